//! The ControlNet conditions of the demo model, from
//! [`optedit_judge::conditions`] (evaluation builds them too), and the data
//! stream of each ControlNet's training stage.

pub use optedit_judge::conditions::*;

/// Stage id of the ControlNet of `kind`, mixed into its data seeds.
pub(crate) fn stage(kind: ControlKind) -> u64 {
    match kind {
        ControlKind::Pose => 4,
        ControlKind::Canny => 5,
        // 6 is the classifier's.
        ControlKind::Scribble => 7,
        ControlKind::Layout => 8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_own_data_stream() {
        let stages: std::collections::BTreeSet<_> =
            ControlKind::ALL.iter().map(|&k| stage(k)).collect();
        assert_eq!(stages.len(), 4);
        // 1-3 are the VAE, latents and UNet stages, 6 the classifier's.
        assert!(stages.iter().all(|s| ![1, 2, 3, 6].contains(s)));
    }
}
