//! [`Method`]: which editor runs, the one list every front end (the `optedit`
//! facade, the CLI, the evaluation) shares.

/// An editing method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Method {
    /// The paper's optimisation-based editor ([`Editor::edit`](crate::Editor::edit)).
    Optimise,
    /// DiffEdit ([`Editor::diffedit`](crate::Editor::diffedit)): masked
    /// blending with the inversion while denoising.
    DiffEdit,
    /// SDEdit ([`Editor::sdedit`](crate::Editor::sdedit)): noise, then denoise.
    SdEdit,
}

impl Method {
    /// Every method.
    pub const ALL: [Method; 3] = [Method::Optimise, Method::DiffEdit, Method::SdEdit];

    /// Its name on the command line and in result files (`optimise`,
    /// `diffedit`, `sdedit`).
    pub fn word(self) -> &'static str {
        match self {
            Method::Optimise => "optimise",
            Method::DiffEdit => "diffedit",
            Method::SdEdit => "sdedit",
        }
    }

    /// The method named `word` (also `optimize`).
    pub fn from_word(word: &str) -> Option<Self> {
        let word = if word == "optimize" { "optimise" } else { word };
        Self::ALL.into_iter().find(|m| m.word() == word)
    }

    /// Whether it edits under a mask (SDEdit changes the whole image).
    pub fn uses_mask(self) -> bool {
        !matches!(self, Method::SdEdit)
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.word())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip() {
        for m in Method::ALL {
            assert_eq!(Method::from_word(m.word()), Some(m));
            assert_eq!(m.to_string(), m.word());
        }
        assert_eq!(Method::from_word("optimize"), Some(Method::Optimise));
        assert_eq!(Method::from_word("inpaint"), None);
        assert!(Method::DiffEdit.uses_mask() && !Method::SdEdit.uses_mask());
    }
}
