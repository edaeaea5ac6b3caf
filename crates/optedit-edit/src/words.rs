//! The enums named by a word on the command line, in batch job files and in
//! result files ([`Method`](crate::Method),
//! [`OptimizerKind`](crate::OptimizerKind), [`LossSpace`](crate::LossSpace),
//! [`GuidanceGradient`](crate::GuidanceGradient)): one macro gives each its
//! `ALL`, `word`, `from_word` and `Display`, so that a word is written once.

/// Implements `ALL` (every value, in order), `word`, `from_word` (also
/// accepting the `aliases`) and `Display` (the word) for the enum `$t`,
/// whose values are called `$what` in the generated docs.
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
                "Every word, comma-separated (`", $w0, "`" $(, ", `", $w, "`")*,
                "), for messages that list the choices."
            )]
            pub fn words() -> String {
                [$w0 $(, $w)*].join(", ")
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
    };
}

pub(crate) use words;

#[cfg(test)]
mod tests {
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
            (4, 2, 2)
        );
        assert_eq!(OptimizerKind::NormalizedGd.word(), "normalized-gd");
        assert_eq!(GuidanceGradient::words(), "both, conditional");
        assert_eq!(Method::words(), "optimise, diffedit, sdedit");
        assert_eq!(
            GuidanceGradient::from_word("conditional"),
            Some(GuidanceGradient::Conditional)
        );
    }
}
