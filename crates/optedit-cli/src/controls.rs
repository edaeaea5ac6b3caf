//! ControlNet groups: `--controlnet DIR` followed by one condition flag and
//! an optional `--control-scale`, associated by their positions on the
//! command line. Their condition images are made by the facade
//! ([`optedit::conditions`]).

use std::path::PathBuf;

use anyhow::Result;
use clap::ArgMatches;
pub use optedit::conditions::Condition;

use crate::UsageError;

/// One `--controlnet` group.
#[derive(Debug, Clone, PartialEq)]
pub struct ControlSpec {
    /// ControlNet folder.
    pub model: PathBuf,
    /// Its condition.
    pub condition: Condition,
    /// Conditioning scale.
    pub scale: f64,
}

enum Item {
    Start(PathBuf),
    Cond(&'static str, String, Condition),
    Scale(f64),
}

fn indexed<T: Clone + Send + Sync + 'static>(m: &ArgMatches, id: &str) -> Vec<(usize, T)> {
    match (m.indices_of(id), m.get_many::<T>(id)) {
        (Some(i), Some(v)) => i.zip(v.cloned()).collect(),
        _ => Vec::new(),
    }
}

/// The groups of a subcommand's matches (`m` is the subcommand's own).
pub fn parse_groups(m: &ArgMatches) -> Result<Vec<ControlSpec>> {
    let mut items: Vec<(usize, Item)> = Vec::new();
    items.extend(
        indexed::<PathBuf>(m, "controlnet")
            .into_iter()
            .map(|(i, p)| (i, Item::Start(p))),
    );
    for (id, flag) in [
        ("pose", "--pose"),
        ("scribble", "--scribble"),
        ("layout", "--layout"),
    ] {
        for (i, p) in indexed::<PathBuf>(m, id) {
            let text = p.display().to_string();
            let c = match id {
                "pose" => Condition::Pose(p),
                "scribble" => Condition::Scribble(p),
                _ => Condition::Layout(p),
            };
            items.push((i, Item::Cond(flag, text, c)));
        }
    }
    for (i, v) in indexed::<String>(m, "edges") {
        let c = if v == "auto" {
            Condition::EdgesAuto
        } else {
            Condition::Edges(PathBuf::from(&v))
        };
        items.push((i, Item::Cond("--edges", v, c)));
    }
    items.extend(
        indexed::<f64>(m, "control_scale")
            .into_iter()
            .map(|(i, s)| (i, Item::Scale(s))),
    );
    items.sort_by_key(|(i, _)| *i);

    struct Group {
        model: PathBuf,
        cond: Option<(&'static str, Condition)>,
        scale: Option<f64>,
    }
    let mut groups: Vec<Group> = Vec::new();
    let usage = |msg: String| anyhow::Error::from(UsageError(msg));
    for (_, item) in items {
        match item {
            Item::Start(model) => groups.push(Group {
                model,
                cond: None,
                scale: None,
            }),
            Item::Cond(flag, text, c) => {
                let g = groups.last_mut().ok_or_else(|| {
                    usage(format!(
                        "`{flag} {text}` needs a `--controlnet <DIR>` before it (each --controlnet starts a group; the condition flag after it belongs to it)"
                    ))
                })?;
                if let Some((first, _)) = &g.cond {
                    return Err(usage(format!(
                        "--controlnet {} has two condition flags ({first} and {flag}); give one per --controlnet",
                        g.model.display()
                    )));
                }
                g.cond = Some((flag, c));
            }
            Item::Scale(s) => {
                let g = groups.last_mut().ok_or_else(|| {
                    usage(format!(
                        "`--control-scale {s}` needs a `--controlnet <DIR>` before it"
                    ))
                })?;
                if g.scale.is_some() {
                    return Err(usage(format!(
                        "--controlnet {} has two --control-scale values",
                        g.model.display()
                    )));
                }
                if !s.is_finite() {
                    return Err(usage(format!("--control-scale {s} must be finite")));
                }
                g.scale = Some(s);
            }
        }
    }
    groups
        .into_iter()
        .map(|g| {
            let (_, condition) = g.cond.ok_or_else(|| {
                usage(format!(
                    "--controlnet {} has no condition: give one of --pose, --scribble, --edges, --layout after it",
                    g.model.display()
                ))
            })?;
            Ok(ControlSpec {
                model: g.model,
                condition,
                scale: g.scale.unwrap_or(1.0),
            })
        })
        .collect()
}
