//! The room allow-list (`--allow-rooms`): glob patterns a `join` must match.
//!
//! This module owns the pattern grammar and the matcher behind the standalone
//! server's room validator.
//!
//! # Contract
//!
//! - Grammar: `*` matches any run of characters (including none), `?` exactly one
//!   character (a Unicode scalar value), `{userId}` the joining client's user id
//!   taken **literally** (a `*` or `?` inside a user id matches only itself).
//!   Everything else matches itself, byte for byte and case-sensitively. There is no
//!   escaping, and braces are reserved: any other `{…}`, an unclosed `{` or a stray
//!   `}` is a [`PatternError`], as is an empty pattern.
//! - A pattern containing `{userId}` never matches a client without a user id (nor
//!   one whose user id is empty).
//! - Default deny: a policy with no pattern allows nothing.
//! - Patterns are compiled once into tokens by [`RoomPolicy::new`]; the policy is
//!   immutable afterwards, `Send + Sync`, shared by every shard without locks.
//! - Matching never allocates (only [`RoomPolicy::filter`]'s result does) and uses the
//!   two-pointer star-backtrack algorithm: at most O(pattern × room) steps, never
//!   exponential, whatever the input.

/// One compiled piece of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// Characters that must appear verbatim.
    Literal(Box<str>),
    /// `?`: exactly one Unicode scalar value.
    AnyChar,
    /// `*`: any run of characters, possibly empty. Never two in a row.
    AnyRun,
    /// `{userId}`: the client's user id, verbatim.
    UserId,
}

/// The placeholder replaced by the client's user id.
const USER_ID_PLACEHOLDER: &str = "{userId}";

/// A pattern cannot be compiled. Raised at startup while reading `--allow-rooms`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// An empty pattern (e.g. a trailing comma in `--allow-rooms`): remove it, or use `*`
    /// to allow every room.
    #[error("empty room pattern; remove it, or use `*` to allow every room")]
    Empty,
    /// A `{…}` other than `{userId}`: only `{userId}` is a placeholder (names are
    /// case-sensitive).
    #[error(
        "room pattern `{pattern}`: unknown placeholder `{placeholder}`; only {{userId}} is supported"
    )]
    UnknownPlaceholder {
        /// The pattern as given.
        pattern: String,
        /// The offending `{…}`.
        placeholder: String,
    },
    /// A `{` without its `}`, or a `}` without its `{`: braces are reserved for `{userId}`.
    #[error("room pattern `{pattern}`: unbalanced brace; braces are reserved for {{userId}}")]
    UnbalancedBrace {
        /// The pattern as given.
        pattern: String,
    },
}

/// One compiled pattern.
#[derive(Debug, Clone)]
struct Pattern {
    source: Box<str>,
    tokens: Box<[Token]>,
    needs_user: bool,
    /// The tokens with `{userId}` standing for any non-empty run (`?*`), when it has one.
    any_user: Option<Box<[Token]>>,
}

impl Pattern {
    fn compile(source: &str) -> Result<Self, PatternError> {
        if source.is_empty() {
            return Err(PatternError::Empty);
        }
        let tokens = tokenize(source)?;
        let needs_user = tokens.contains(&Token::UserId);
        let any_user = needs_user.then(|| any_user_tokens(&tokens));
        Ok(Pattern {
            source: source.into(),
            tokens: tokens.into_boxed_slice(),
            needs_user,
            any_user,
        })
    }

    /// Whether the room matches for some non-empty user id.
    fn matches_any_user(&self, room: &str) -> bool {
        let tokens = self.any_user.as_deref().unwrap_or(&self.tokens);
        glob_match(tokens, room, "")
    }

    fn matches(&self, room: &str, user_id: Option<&str>) -> bool {
        let user = match user_id {
            Some(user) if !user.is_empty() => user,
            _ if self.needs_user => return false,
            _ => "",
        };
        glob_match(&self.tokens, room, user)
    }
}

/// Splits a pattern into tokens, merging runs of `*` and of literal characters.
///
/// Scans bytes: every special character is ASCII, and ASCII bytes never occur
/// inside a multi-byte UTF-8 sequence, so every slice below is on a char boundary.
fn tokenize(source: &str) -> Result<Vec<Token>, PatternError> {
    let bytes = source.as_bytes();
    let mut tokens = Vec::new();
    let (mut i, mut literal_start) = (0, 0);
    while let Some(&byte) = bytes.get(i) {
        let (token, len) = match byte {
            b'*' => (Token::AnyRun, 1),
            b'?' => (Token::AnyChar, 1),
            b'{' => (placeholder(source, i)?, USER_ID_PLACEHOLDER.len()),
            b'}' => return Err(unbalanced(source)),
            _ => {
                i += 1;
                continue;
            }
        };
        push_literal(&mut tokens, &source[literal_start..i]);
        if !(token == Token::AnyRun && tokens.last() == Some(&Token::AnyRun)) {
            tokens.push(token);
        }
        i += len;
        literal_start = i;
    }
    push_literal(&mut tokens, &source[literal_start..]);
    Ok(tokens)
}

/// `tokens` with each `{userId}` replaced by `?*` (one character or more), keeping no
/// two `*` in a row.
fn any_user_tokens(tokens: &[Token]) -> Box<[Token]> {
    let mut out: Vec<Token> = Vec::with_capacity(tokens.len() + 2);
    for token in tokens {
        match token {
            Token::UserId => out.extend([Token::AnyChar, Token::AnyRun]),
            Token::AnyRun if out.last() == Some(&Token::AnyRun) => {}
            other => out.push(other.clone()),
        }
    }
    out.into_boxed_slice()
}

/// Reads the `{…}` starting at byte `at` of `source`.
fn placeholder(source: &str, at: usize) -> Result<Token, PatternError> {
    let after = &source[at + 1..];
    let Some(close) = after
        .find(['{', '}'])
        .filter(|&i| after[i..].starts_with('}'))
    else {
        return Err(unbalanced(source));
    };
    let text = &source[at..at + close + 2];
    if text == USER_ID_PLACEHOLDER {
        Ok(Token::UserId)
    } else {
        Err(PatternError::UnknownPlaceholder {
            pattern: source.to_owned(),
            placeholder: text.to_owned(),
        })
    }
}

fn unbalanced(source: &str) -> PatternError {
    PatternError::UnbalancedBrace {
        pattern: source.to_owned(),
    }
}

fn push_literal(tokens: &mut Vec<Token>, text: &str) {
    if !text.is_empty() {
        tokens.push(Token::Literal(text.into()));
    }
}

/// Two-pointer glob match with backtracking to the last `*` only.
///
/// Returns whether `tokens` match the whole of `room`, with `{userId}` standing for
/// `user`. Expanding every literal into single characters gives the textbook
/// algorithm; matching a literal chunk at once is equivalent because a mismatch
/// anywhere in it resumes from the same star.
fn glob_match(tokens: &[Token], room: &str, user: &str) -> bool {
    let (mut t, mut s) = (0, 0);
    // (token after the last `*`, room offset that `*` currently stops at)
    let mut star: Option<(usize, usize)> = None;
    loop {
        if let Some(token) = tokens.get(t) {
            let advanced = match token {
                Token::AnyRun => {
                    star = Some((t + 1, s));
                    Some(s)
                }
                Token::AnyChar => room[s..].chars().next().map(|c| s + c.len_utf8()),
                Token::Literal(text) => room[s..].starts_with(&**text).then(|| s + text.len()),
                Token::UserId => room[s..].starts_with(user).then(|| s + user.len()),
            };
            if let Some(next) = advanced {
                (t, s) = (t + 1, next);
                continue;
            }
        } else if s == room.len() {
            return true;
        }
        // Mismatch: let the last `*` swallow one more character, or give up.
        let Some((after_star, stop)) = star else {
            return false;
        };
        let Some(c) = room[stop..].chars().next() else {
            return false;
        };
        let stop = stop + c.len_utf8();
        star = Some((after_star, stop));
        (t, s) = (after_star, stop);
    }
}

/// The compiled room allow-list: a room may be joined when any pattern matches it.
///
/// ```
/// use shardcast::rooms::glob::RoomPolicy;
///
/// let policy = RoomPolicy::new(&["public-*", "chat-?", "user-{userId}-*"]).unwrap();
/// assert!(policy.allows("public-lobby", None));
/// assert!(policy.allows("user-42-inbox", Some("42")));
/// assert!(!policy.allows("user-42-inbox", Some("7")));
/// assert_eq!(
///     policy.filter(["chat-1", "chat-12", "public-x"], None),
///     ["chat-1", "public-x"],
/// );
/// assert!(!RoomPolicy::new::<&str>(&[]).unwrap().allows("anything", None));
/// ```
#[derive(Debug, Clone, Default)]
pub struct RoomPolicy {
    patterns: Box<[Pattern]>,
}

impl RoomPolicy {
    /// Compiles `patterns` (e.g. `public-*`, `chat-?`, `user-{userId}-*`).
    ///
    /// An empty list gives a policy that denies everything (default deny). Fails on the
    /// first empty pattern, unknown placeholder or unbalanced brace.
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Self, PatternError> {
        let patterns = patterns
            .iter()
            .map(|p| Pattern::compile(p.as_ref()))
            .collect::<Result<Box<[_]>, _>>()?;
        Ok(RoomPolicy { patterns })
    }

    /// Whether a client with `user_id` may join `room`. Does not allocate.
    pub fn allows(&self, room: &str, user_id: Option<&str>) -> bool {
        self.patterns.iter().any(|p| p.matches(room, user_id))
    }

    /// Whether `room` matches for some user: `{userId}` stands for any non-empty run of
    /// characters. This is how a room list that is not about who joins (which rooms keep
    /// history, which track presence) reads the same patterns.
    ///
    /// ```
    /// use shardcast::rooms::glob::RoomPolicy;
    ///
    /// let rooms = RoomPolicy::new(&["user-{userId}-inbox", "news"]).unwrap();
    /// assert!(rooms.matches_any_user("user-42-inbox"));
    /// assert!(!rooms.matches_any_user("user--inbox"));
    /// assert!(rooms.matches_any_user("news"));
    /// ```
    pub fn matches_any_user(&self, room: &str) -> bool {
        self.patterns.iter().any(|p| p.matches_any_user(room))
    }

    /// The allowed subset of `rooms`, in the order given (duplicates are kept).
    pub fn filter<'a>(
        &self,
        rooms: impl IntoIterator<Item = &'a str>,
        user_id: Option<&str>,
    ) -> Vec<&'a str> {
        rooms
            .into_iter()
            .filter(|room| self.allows(room, user_id))
            .collect()
    }

    /// True when the policy has no pattern, i.e. denies every room.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// The patterns as given, in order (for logs and the dashboard).
    pub fn patterns(&self) -> impl Iterator<Item = &str> {
        self.patterns.iter().map(|p| &*p.source)
    }
}

const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<RoomPolicy>();
};

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(patterns: &[&str]) -> RoomPolicy {
        RoomPolicy::new(patterns).unwrap()
    }

    #[test]
    fn star_matches_any_run_including_empty() {
        let p = policy(&["public-*"]);
        for room in ["public-", "public-x", "public-a-b-c", "public-🦀"] {
            assert!(p.allows(room, None), "{room}");
        }
        for room in ["public", "publi", "xpublic-a", "Public-a", ""] {
            assert!(!p.allows(room, None), "{room}");
        }
    }

    #[test]
    fn stars_anywhere_in_the_pattern() {
        let p = policy(&["*-room-*", "a*b*c"]);
        for room in [
            "-room-",
            "x-room-y",
            "a-room-b-room-c",
            "abc",
            "a-b-c",
            "abbbc",
            "acbc",
        ] {
            assert!(p.allows(room, None), "{room}");
        }
        for room in ["room", "x-room", "ab", "acb", "abca"] {
            assert!(!p.allows(room, None), "{room}");
        }
    }

    #[test]
    fn question_mark_matches_exactly_one_unicode_scalar() {
        let p = policy(&["chat-?"]);
        for room in ["chat-1", "chat-é", "chat-🦀", "chat-?"] {
            assert!(p.allows(room, None), "{room}");
        }
        for room in ["chat-", "chat-12", "chat-é1", "chat"] {
            assert!(!p.allows(room, None), "{room}");
        }
        assert!(policy(&["??"]).allows("🦀é", None));
        assert!(!policy(&["??"]).allows("🦀", None));
    }

    #[test]
    fn literal_pattern_is_exact_and_case_sensitive() {
        let p = policy(&["lobby"]);
        assert!(p.allows("lobby", None));
        for room in ["Lobby", "lobby ", "lobby2", "lobb", ""] {
            assert!(!p.allows(room, None), "{room}");
        }
    }

    #[test]
    fn user_id_placeholder_matches_the_client_user_id() {
        let p = policy(&["user-{userId}-*"]);
        assert!(p.allows("user-42-inbox", Some("42")));
        assert!(p.allows("user-42-", Some("42")));
        assert!(!p.allows("user-42-inbox", Some("4")));
        assert!(!p.allows("user-42-inbox", Some("7")));
        assert!(
            p.allows("user-4-2-inbox", Some("4")),
            "the star takes `2-inbox`"
        );
        assert!(policy(&["{userId}"]).allows("ünï", Some("ünï")));
    }

    #[test]
    fn user_id_pattern_never_matches_without_a_user_id() {
        let p = policy(&["user-{userId}-*", "{userId}"]);
        for room in ["user--x", "user-{userId}-x", "", "anything"] {
            assert!(!p.allows(room, None), "{room}");
            assert!(!p.allows(room, Some("")), "{room}");
        }
    }

    #[test]
    fn wildcards_in_a_user_id_are_matched_literally() {
        let p = policy(&["user-{userId}-inbox"]);
        assert!(p.allows("user-*-inbox", Some("*")));
        assert!(!p.allows("user-alice-inbox", Some("*")));
        assert!(p.allows("user-?-inbox", Some("?")));
        assert!(!p.allows("user-a-inbox", Some("?")));
        assert!(!p.allows("user-{userId}-inbox", Some("{userId}x")));
        assert!(p.allows("user-{userId}-inbox", Some("{userId}")));
    }

    #[test]
    fn invalid_patterns_are_refused() {
        assert_eq!(RoomPolicy::new(&[""]).unwrap_err(), PatternError::Empty);
        assert_eq!(
            RoomPolicy::new(&["ok-*", ""]).unwrap_err(),
            PatternError::Empty
        );
        for bad in ["{user}", "{}", "{userid}", "a-{ userId }", "{userId}{x}"] {
            let err = RoomPolicy::new(&[bad]).unwrap_err();
            assert!(
                matches!(err, PatternError::UnknownPlaceholder { .. }),
                "{bad}: {err}"
            );
        }
        for bad in ["{userId", "a}b", "}", "{", "{{userId}}", "x-{userId-*"] {
            let err = RoomPolicy::new(&[bad]).unwrap_err();
            assert!(
                matches!(err, PatternError::UnbalancedBrace { .. }),
                "{bad}: {err}"
            );
        }
        let err = RoomPolicy::new(&["{team}-*"]).unwrap_err();
        assert!(err.to_string().contains("{team}"), "{err}");
    }

    #[test]
    fn empty_policy_denies_everything() {
        let p = RoomPolicy::new::<&str>(&[]).unwrap();
        assert!(p.is_empty());
        assert!(RoomPolicy::default().is_empty());
        for room in ["", "a", "public-x", "*"] {
            assert!(!p.allows(room, Some("u")), "{room}");
        }
        assert!(!policy(&["*"]).is_empty());
    }

    #[test]
    fn filter_keeps_order_and_duplicates() {
        let p = policy(&["public-*", "user-{userId}"]);
        let rooms = [
            "user-9", "secret", "public-b", "public-a", "user-8", "public-b",
        ];
        assert_eq!(
            p.filter(rooms, Some("9")),
            ["user-9", "public-b", "public-a", "public-b"]
        );
        assert_eq!(p.filter(rooms, None), ["public-b", "public-a", "public-b"]);
        assert!(p.filter([], None).is_empty());
    }

    #[test]
    fn patterns_are_reported_as_given() {
        let p = policy(&["a**b", "c-{userId}"]);
        assert_eq!(p.patterns().collect::<Vec<_>>(), ["a**b", "c-{userId}"]);
        assert!(p.allows("ab", None) && p.allows("a-x-b", None));
    }

    #[test]
    fn consecutive_stars_compile_to_one() {
        let tokens = tokenize("a***b").unwrap();
        assert_eq!(
            tokens,
            [
                Token::Literal("a".into()),
                Token::AnyRun,
                Token::Literal("b".into())
            ]
        );
    }

    #[test]
    fn pathological_patterns_finish_quickly() {
        let room = "a".repeat(20_000);
        let p = policy(&["*a*a*a*a*a*a*a*a*a*a*b", "?*?*?*?*?*?*?*?*b"]);
        assert!(!p.allows(&room, None));
        assert!(policy(&["*a*a*a*a*a*a*a*a*a*a*"]).allows(&room, None));
    }

    /// A small deterministic generator (xorshift64), so the property tests need no crate.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }

        fn string(&mut self, alphabet: &[&str], max_len: usize) -> String {
            let len = self.below(max_len + 1);
            (0..len)
                .map(|_| alphabet[self.below(alphabet.len())])
                .collect()
        }
    }

    const ROOM_CHARS: &[&str] = &["a", "b", "-", "é", "🦀", "*", "?", "{", "}"];
    const LITERAL_CHARS: &[&str] = &["a", "b", "-", "é", "🦀"];

    #[test]
    fn property_star_alone_matches_everything() {
        let (mut rng, star) = (Rng(0x9e37_79b9_7f4a_7c15), policy(&["*"]));
        for _ in 0..5_000 {
            let room = rng.string(ROOM_CHARS, 12);
            assert!(star.allows(&room, None), "{room}");
            assert!(star.allows(&room, Some("u")), "{room}");
        }
    }

    #[test]
    fn property_literal_pattern_matches_only_itself() {
        let mut rng = Rng(0x0123_4567_89ab_cdef);
        for _ in 0..2_000 {
            let literal = rng.string(LITERAL_CHARS, 6);
            if literal.is_empty() {
                continue;
            }
            let p = policy(&[literal.as_str()]);
            assert!(p.allows(&literal, None), "{literal}");
            for _ in 0..20 {
                let room = rng.string(ROOM_CHARS, 6);
                assert_eq!(
                    p.allows(&room, None),
                    room == literal,
                    "{literal} vs {room}"
                );
            }
        }
    }

    /// Exponential textbook matcher over characters, as a reference for small inputs.
    fn reference(pattern: &[char], room: &[char]) -> bool {
        match pattern.split_first() {
            None => room.is_empty(),
            Some(('*', rest)) => (0..=room.len()).any(|i| reference(rest, &room[i..])),
            Some(('?', rest)) => !room.is_empty() && reference(rest, &room[1..]),
            Some((c, rest)) => room.first() == Some(c) && reference(rest, &room[1..]),
        }
    }

    #[test]
    fn property_agrees_with_reference_matcher() {
        let mut rng = Rng(0xdead_beef_cafe_f00d);
        let pattern_chars = ["a", "b", "é", "🦀", "*", "?", "{userId}"];
        for _ in 0..3_000 {
            let pattern = rng.string(&pattern_chars, 7);
            if pattern.is_empty() {
                continue;
            }
            let user = rng.string(&["a", "b", "é"], 2);
            let expanded: Vec<char> = pattern.replace("{userId}", &user).chars().collect();
            let p = policy(&[pattern.as_str()]);
            for _ in 0..20 {
                let room = rng.string(LITERAL_CHARS, 8);
                let room_chars: Vec<char> = room.chars().collect();
                let expected = !(user.is_empty() && pattern.contains("{userId}"))
                    && reference(&expanded, &room_chars);
                let user_id = (!user.is_empty()).then_some(user.as_str());
                assert_eq!(
                    p.allows(&room, user_id),
                    expected,
                    "{pattern} / {user} / {room}"
                );
            }
        }
    }
}
