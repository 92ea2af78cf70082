import re, glob, statistics, collections
unit = {'ps':1e-3,'ns':1,'µs':1e3,'us':1e3,'ms':1e6,'s':1e9}
data = collections.defaultdict(lambda: collections.defaultdict(list))
for path in sorted(glob.glob('raw/*.txt')):
    which = path.split('/')[-1].split('-')[0]
    name = None
    for line in open(path):
        m = re.match(r'^(\S+)\s*$', line)
        if m and '/' in m.group(1): name = m.group(1)
        m = re.search(r'^(\S+)?\s+time:\s+\[\S+ \S+ (\S+) (\S+) \S+ \S+\]', line)
        if m:
            if m.group(1): name = m.group(1)
            data[name][which].append(float(m.group(2))*unit[m.group(3)])
def fmt(ns):
    return f"{ns/1e3:.2f} µs" if ns >= 1e3 else f"{ns:.1f} ns"
print("| bench | before | after | after/before | before range | after range |")
print("|---|---|---|---|---|---|")
for name, d in data.items():
    b, a = d.get('before', []), d.get('after', [])
    mb = statistics.median(b) if b else None
    ma = statistics.median(a) if a else None
    ratio = f"{ma/mb:.2f}" if mb and ma else "—"
    rng = lambda xs: f"{fmt(min(xs))}–{fmt(max(xs))}" if xs else "—"
    print(f"| `{name}` | {fmt(mb) if mb else '—'} | {fmt(ma) if ma else '—'} | {ratio} | {rng(b)} | {rng(a)} |")
