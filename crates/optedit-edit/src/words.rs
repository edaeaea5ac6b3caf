//! The enums named by a word on the command line, in batch job files and in
//! result files ([`Method`](crate::Method),
//! [`OptimizerKind`](crate::OptimizerKind), [`LossSpace`](crate::LossSpace),
//! [`GuidanceGradient`](crate::GuidanceGradient)): one macro gives each its
//! `ALL`, `word`, `from_word`, `Display` and the [`Worded`] trait (which
//! adds `words` and `parse_word`), so that a word is written once and code
//! generic over the enums (serde fields, command-line parsers) needs no
//! table of its own.

/// An enum named by a word: every value, each value's word, and the value of
/// a word. Implemented by [`Method`](crate::Method),
/// [`OptimizerKind`](crate::OptimizerKind), [`LossSpace`](crate::LossSpace)
/// and [`GuidanceGradient`](crate::GuidanceGradient) (each also has `ALL`,
/// `word` and `from_word` inherent), and by enums of other crates that are named the
/// same way (the evaluation's `Method`, which adds its calibration rows).
pub trait Worded: Sized + Copy + 'static {
    /// What one value is called in messages (e.g. `"loss space"`).
    const WHAT: &'static str;
    /// Every value, in order.
    fn all() -> &'static [Self];
    /// The value's word.
    fn word(self) -> &'static str;
    /// The value named `word` (or one of its aliases).
    fn from_word(word: &str) -> Option<Self>;
    /// Every word, comma-separated, for messages that list the choices.
    fn words() -> String {
        let words: Vec<&str> = Self::all().iter().map(|v| v.word()).collect();
        words.join(", ")
    }
    /// The value named `word`, or the message `expected one of ...`.
    fn parse_word(word: &str) -> Result<Self, String> {
        Self::from_word(word).ok_or_else(|| format!("expected one of {}", Self::words()))
    }
}

/// Implements `ALL` (every value, in order), `word`, `from_word` (also
/// accepting the `aliases`), `Display` (the word) and [`Worded`] for the
/// enum `$t`, whose values are called `$what` in the generated docs and in
/// messages.
macro_rules! words {
    (
        $t:ident, $what:literal,
        { $v0:ident => $w0:literal $(, $v:ident => $w:literal)* $(,)? }
        $(, aliases { $($alias:literal => $av:ident),* $(,)? })?
    ) => {
        impl $t {
            #[doc = concat!("Every ", $what, ".")]
            pub const ALL: [$t; [$w0 $(, $w)*].len()] = [$t::$v0 $(, $t::$v)*];

            #[doc = concat!(
                "Its name on the command line and in result files (`", $w0, "`"
                $(, ", `", $w, "`")*, ")."
            )]
            pub fn word(self) -> &'static str {
                match self {
                    $t::$v0 => $w0,
                    $($t::$v => $w,)*
                }
            }

            #[doc = concat!(
                "The ", $what, " named `word` ([`", stringify!($t), "::word`]",
                $($(", or `", $alias, "`",)*)? ")."
            )]
            pub fn from_word(word: &str) -> Option<Self> {
                $($(if word == $alias {
                    return Some($t::$av);
                })*)?
                Self::ALL.into_iter().find(|k| k.word() == word)
            }
        }

        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.word())
            }
        }

        impl $crate::words::Worded for $t {
            const WHAT: &'static str = $what;
            fn all() -> &'static [Self] {
                &$t::ALL
            }
            fn word(self) -> &'static str {
                $t::word(self)
            }
            fn from_word(word: &str) -> Option<Self> {
                $t::from_word(word)
            }
        }
    };
}

pub(crate) use words;

#[cfg(test)]
mod tests {
    use super::Worded;
    use crate::{GuidanceGradient, LossSpace, Method, OptimizerKind};

    /// Every value's word reads back as the value and is its `Display`;
    /// the words are distinct; an unknown word reads as nothing.
    fn round_trip<T: Copy + PartialEq + std::fmt::Debug + std::fmt::Display>(
        all: &[T],
        word: fn(T) -> &'static str,
        from_word: fn(&str) -> Option<T>,
    ) {
        for (i, &v) in all.iter().enumerate() {
            assert_eq!(from_word(word(v)), Some(v));
            assert_eq!(v.to_string(), word(v));
            assert!(all[..i].iter().all(|&u| word(u) != word(v)));
        }
        assert_eq!(from_word("no-such-word"), None);
    }

    #[test]
    fn every_worded_enum_round_trips() {
        round_trip(&Method::ALL, Method::word, Method::from_word);
        round_trip(
            &OptimizerKind::ALL,
            OptimizerKind::word,
            OptimizerKind::from_word,
        );
        round_trip(&LossSpace::ALL, LossSpace::word, LossSpace::from_word);
        round_trip(
            &GuidanceGradient::ALL,
            GuidanceGradient::word,
            GuidanceGradient::from_word,
        );
        assert_eq!(
            (
                OptimizerKind::ALL.len(),
                LossSpace::ALL.len(),
                GuidanceGradient::ALL.len()
            ),
            (4, 2, 4)
        );
        assert_eq!(OptimizerKind::NormalizedGd.word(), "normalized-gd");
        assert_eq!(
            GuidanceGradient::words(),
            "both, conditional, detached, frozen"
        );
        assert_eq!(Method::words(), "optimise, diffedit, sdedit");
        assert_eq!(
            GuidanceGradient::from_word("conditional"),
            Some(GuidanceGradient::Conditional)
        );
        assert_eq!(
            GuidanceGradient::from_word("detached"),
            Some(GuidanceGradient::Detached)
        );
        assert_eq!(
            GuidanceGradient::from_word("frozen"),
            Some(GuidanceGradient::Frozen)
        );
    }

    /// The trait agrees with the inherent functions and parses with the
    /// message the command line shows.
    #[test]
    fn the_trait_is_the_inherent_table() {
        fn check<T: Worded + PartialEq + std::fmt::Debug>(inherent: &[T], words: &str) {
            assert_eq!(T::all(), inherent);
            assert_eq!(T::words(), words);
            for &v in T::all() {
                assert_eq!(T::parse_word(Worded::word(v)), Ok(v));
            }
            assert_eq!(
                T::parse_word("no-such-word"),
                Err(format!("expected one of {words}"))
            );
        }
        check(&Method::ALL, "optimise, diffedit, sdedit");
        check(&OptimizerKind::ALL, "sgd, adam, adam-kept, normalized-gd");
        check(&LossSpace::ALL, "next, clean");
        check(
            &GuidanceGradient::ALL,
            "both, conditional, detached, frozen",
        );
        assert_eq!(Method::parse_word("optimize"), Ok(Method::Optimise));
        assert_eq!(
            (
                <Method as Worded>::WHAT,
                <OptimizerKind as Worded>::WHAT,
                <LossSpace as Worded>::WHAT,
                <GuidanceGradient as Worded>::WHAT
            ),
            ("method", "optimizer", "loss space", "guidance gradient")
        );
    }
}
