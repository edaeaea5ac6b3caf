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

crate::words::words!(Method, "method", {
    Optimise => "optimise",
    DiffEdit => "diffedit",
    SdEdit => "sdedit",
}, aliases { "optimize" => Optimise });

impl Method {
    /// Whether it edits under a mask (SDEdit changes the whole image).
    pub fn uses_mask(self) -> bool {
        !matches!(self, Method::SdEdit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optimize_is_optimise_and_sdedit_takes_no_mask() {
        assert_eq!(Method::from_word("optimize"), Some(Method::Optimise));
        assert_eq!(Method::from_word("inpaint"), None);
        assert!(Method::DiffEdit.uses_mask() && !Method::SdEdit.uses_mask());
    }
}
