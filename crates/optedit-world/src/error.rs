//! The crate's error type.

/// Result with [`WorldError`].
pub type Result<T, E = WorldError> = std::result::Result<T, E>;

/// Why a scene could not be sampled, edited, parsed or checked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorldError {
    /// An object index past the end of the scene's object list.
    #[error("object index {index} is out of range: the scene has {count} objects")]
    ObjectIndex {
        /// The index asked for.
        index: usize,
        /// How many objects the scene has.
        count: usize,
    },
    /// A requested object count outside `1..=MAX_OBJECTS`.
    #[error("object count {count} is out of range 1..={max}")]
    ObjectCount {
        /// The count asked for.
        count: usize,
        /// The largest count a scene can hold.
        max: usize,
    },
    /// The objects asked for did not fit beside the figure.
    #[error("could not place {requested} objects for seed {seed} in {attempts} attempts")]
    Placement {
        /// The scene seed.
        seed: u64,
        /// How many objects were asked for.
        requested: usize,
        /// How many whole-scene attempts were made.
        attempts: usize,
    },
    /// A word that names no colour, shape, pattern or pose.
    #[error("unknown {kind} {word:?}")]
    UnknownWord {
        /// What the word should have named ("colour", "shape", ...).
        kind: &'static str,
        /// The word.
        word: String,
    },
    /// A caption (or phrase) that does not follow the caption grammar.
    #[error("cannot parse {text:?}: {reason}")]
    Caption {
        /// The text.
        text: String,
        /// What was wrong with it.
        reason: String,
    },
    /// A scene description that breaks an invariant (see `SceneSpec::validate`).
    #[error("invalid scene: {0}")]
    InvalidSpec(String),
    /// A scene description that is not valid JSON for a `SceneSpec`.
    #[error("invalid scene JSON: {0}")]
    Json(#[from] serde_json::Error),
}
