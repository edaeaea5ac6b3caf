//! The one two-way table between diffusers / transformers tensor names and
//! burn module paths. It drives loading ([`loader`](crate::loader)), saving
//! ([`saver`](crate::saver)) and the names in error messages.
//!
//! Module fields are named after diffusers' tensor paths (as candle's
//! `stable_diffusion/` and diffusers' `models/` name them), so most tensors
//! keep their name. The rest differ by these rules:
//!
//! | file name (diffusers / transformers)          | burn module path            | dialect |
//! |-----------------------------------------------|-----------------------------|---------|
//! | `*.to_out.0.*`                                 | `*.to_out.*`                | diffusers |
//! | `*.ff.net.0.proj.*`                            | `*.ff.geglu.*`              | diffusers |
//! | `*.ff.net.2.*`                                 | `*.ff.proj_out.*`           | diffusers |
//! | `add_embedding.linear_N.*` (SDXL `text_time`)  | `add_time_embedding.linear_N.*` | diffusers |
//! | `*attentions.N.query/key/value.*`              | `*attentions.N.to_q/to_k/to_v.*` | legacy VAE (read only) |
//! | `*attentions.N.proj_attn.*`                    | `*attentions.N.to_out.*`    | legacy VAE (read only) |
//! | `embeddings.*`, `encoder.*`, `final_layer_norm.*` | `text_model.*`           | transformers 5 CLIP (read only) |
//! | norm `weight` / `bias`                         | `gamma` / `beta`            | every norm ([`NORM_PARAMS`]) |
//!
//! A file speaks one dialect: [`NameTable::for_file`] picks the read-only
//! dialects whose names the file holds (released SD 1.5 VAEs with the older
//! attention names, CLIP files written by transformers 5 without the
//! `text_model.` prefix), so a missing tensor is named as *that* file
//! would name it. Files are written in the current dialect only
//! ([`NameTable::for_save`]). The norm renames are burn's own PyTorch
//! adapters' work; this module only names them back for errors.
//!
//! Each rule is written once, as a pair of templates; the regular
//! expressions of both directions are generated from it. `{n}` stands for
//! a block index (digits), any other `{name}` for any text.

use regex::Regex;

/// Which library writes a model's files: the rules of one never apply to
/// the other's (a VAE's `encoder.*` is not a CLIP `encoder.*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Library {
    /// diffusers: UNet, VAE, ControlNet.
    Diffusers,
    /// transformers: the CLIP text encoders.
    Transformers,
}

/// Which naming a rule belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Current diffusers names: read and written for every diffusers model.
    Diffusers,
    /// The VAE attention names of older diffusers releases (`query`, `key`,
    /// `value`, `proj_attn`): read when the file uses them, never written.
    LegacyVaeAttention,
    /// CLIP text encoders written by transformers 5, without the
    /// `text_model.` prefix released SD 1.5 folders carry: read when the file
    /// uses them; files are written with the prefix.
    UnprefixedClip,
}

impl Dialect {
    /// The library whose files use it.
    pub fn library(self) -> Library {
        match self {
            Self::Diffusers | Self::LegacyVaeAttention => Library::Diffusers,
            Self::UnprefixedClip => Library::Transformers,
        }
    }

    /// Whether files are written in it (else it is only read).
    pub fn is_current(self) -> bool {
        self == Self::Diffusers
    }
}

/// One renaming: the same tensor as the file names it and as the burn module
/// path names it.
#[derive(Debug, Clone, Copy)]
pub struct NameRule {
    /// The file's name, as a template.
    pub file: &'static str,
    /// The burn module path, as a template with the same placeholders.
    pub burn: &'static str,
    /// Which naming it belongs to.
    pub dialect: Dialect,
}

const fn rule(file: &'static str, burn: &'static str, dialect: Dialect) -> NameRule {
    NameRule {
        file,
        burn,
        dialect,
    }
}

/// Every rule, diffusers and transformers models alike (see the module
/// table). Rules of one direction never overlap: at most one matches a name.
pub const RULES: &[NameRule] = &[
    rule("{a}.to_out.0.{b}", "{a}.to_out.{b}", Dialect::Diffusers),
    rule(
        "{a}.ff.net.0.proj.{b}",
        "{a}.ff.geglu.{b}",
        Dialect::Diffusers,
    ),
    rule(
        "{a}.ff.net.2.{b}",
        "{a}.ff.proj_out.{b}",
        Dialect::Diffusers,
    ),
    rule(
        "add_embedding.linear_{n}.{b}",
        "add_time_embedding.linear_{n}.{b}",
        Dialect::Diffusers,
    ),
    rule(
        "{a}attentions.{n}.query.{b}",
        "{a}attentions.{n}.to_q.{b}",
        Dialect::LegacyVaeAttention,
    ),
    rule(
        "{a}attentions.{n}.key.{b}",
        "{a}attentions.{n}.to_k.{b}",
        Dialect::LegacyVaeAttention,
    ),
    rule(
        "{a}attentions.{n}.value.{b}",
        "{a}attentions.{n}.to_v.{b}",
        Dialect::LegacyVaeAttention,
    ),
    rule(
        "{a}attentions.{n}.proj_attn.{b}",
        "{a}attentions.{n}.to_out.{b}",
        Dialect::LegacyVaeAttention,
    ),
    rule(
        "embeddings.{b}",
        "text_model.embeddings.{b}",
        Dialect::UnprefixedClip,
    ),
    rule(
        "encoder.{b}",
        "text_model.encoder.{b}",
        Dialect::UnprefixedClip,
    ),
    rule(
        "final_layer_norm.{b}",
        "text_model.final_layer_norm.{b}",
        Dialect::UnprefixedClip,
    ),
];

/// The norm parameters: the file's name and burn's (`LayerNorm`,
/// `GroupNorm`), renamed by burn's PyTorch adapters.
pub const NORM_PARAMS: &[(&str, &str)] = &[("weight", "gamma"), ("bias", "beta")];

/// Tensors that released checkpoints carry but that are not parameters.
pub const KNOWN_BUFFERS: &[&str] = &["text_model.embeddings.position_ids"];

/// A template as an anchored regular expression with one named group per
/// placeholder.
fn pattern(template: &str) -> String {
    let mut out = String::from("^");
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&regex::escape(&rest[..open]));
        let close = open + rest[open..].find('}').expect("placeholder closed");
        let name = &rest[open + 1..close];
        let body = if name == "n" { r"\d+" } else { ".*" };
        out.push_str(&format!("(?P<{name}>{body})"));
        rest = &rest[close + 1..];
    }
    out.push_str(&regex::escape(rest));
    out.push('$');
    out
}

/// A template as a replacement string (`${name}` per placeholder).
fn replacement(template: &str) -> String {
    template.replace('{', "${")
}

/// The rules in force for one file, in both directions.
#[derive(Debug, Clone)]
pub struct NameTable {
    rules: Vec<NameRule>,
}

impl NameTable {
    fn of(dialects: &[Dialect], library: Library) -> Self {
        // Rules in the order of `dialects`.
        Self {
            rules: dialects
                .iter()
                .flat_map(|d| RULES.iter().filter(move |r| r.dialect == *d))
                .filter(|r| r.dialect.library() == library)
                .copied()
                .collect(),
        }
    }

    /// The rules `library`'s files are written with: its current dialect.
    pub fn for_save(library: Library) -> Self {
        Self::of(&[Dialect::Diffusers], library)
    }

    /// The rules to read a file of `library` whose tensors are named
    /// `file_names`: the current dialect plus each read-only dialect the
    /// file uses. A read-only dialect's rules come first, so they win over
    /// the current ones where both would match the burn path
    /// (`attentions.0.to_out.`).
    pub fn for_file<'n>(library: Library, file_names: impl IntoIterator<Item = &'n str>) -> Self {
        let read_only: Vec<(Dialect, Regex)> = RULES
            .iter()
            .filter(|r| !r.dialect.is_current() && r.dialect.library() == library)
            .map(|r| (r.dialect, Regex::new(&pattern(r.file)).expect("valid rule")))
            .collect();
        let mut used = Vec::new();
        for name in file_names {
            for (dialect, re) in &read_only {
                if !used.contains(dialect) && re.is_match(name) {
                    used.push(*dialect);
                }
            }
        }
        used.push(Dialect::Diffusers);
        Self::of(&used, library)
    }

    /// `(regex, replacement)` pairs from file names to burn paths, for
    /// burn-store's `KeyRemapper`.
    pub fn load_patterns(&self) -> Vec<(String, String)> {
        self.rules
            .iter()
            .map(|r| (pattern(r.file), replacement(r.burn)))
            .collect()
    }

    /// `(regex, replacement)` pairs from burn paths to file names.
    pub fn save_patterns(&self) -> Vec<(String, String)> {
        self.rules
            .iter()
            .map(|r| (pattern(r.burn), replacement(r.file)))
            .collect()
    }

    /// The burn module path of the file's tensor `file_name`.
    pub fn burn_path(&self, file_name: &str) -> String {
        apply_first(&self.load_patterns(), file_name)
    }

    /// The file's name of the burn parameter `burn_path`, norm parameters
    /// (`gamma`, `beta`) included: what error messages show.
    pub fn file_name(&self, burn_path: &str) -> String {
        let mut name = apply_first(&self.save_patterns(), burn_path);
        for (file, burn) in NORM_PARAMS {
            if let Some(stem) = name.strip_suffix(&format!(".{burn}")) {
                name = format!("{stem}.{file}");
            }
        }
        name
    }
}

/// Applies the first of `patterns` that matches `name`.
fn apply_first(patterns: &[(String, String)], name: &str) -> String {
    for (re, to) in patterns {
        let re = Regex::new(re).expect("valid rule");
        if re.is_match(name) {
            return re.replace(name, to.as_str()).into_owned();
        }
    }
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One real tensor name per rule, as the file names it.
    const EXAMPLES: &[(&str, &str)] = &[
        (
            "down_blocks.0.attentions.1.transformer_blocks.0.attn1.to_out.0.weight",
            "down_blocks.0.attentions.1.transformer_blocks.0.attn1.to_out.weight",
        ),
        (
            "mid_block.attentions.0.transformer_blocks.0.ff.net.0.proj.bias",
            "mid_block.attentions.0.transformer_blocks.0.ff.geglu.bias",
        ),
        (
            "up_blocks.1.attentions.2.transformer_blocks.0.ff.net.2.weight",
            "up_blocks.1.attentions.2.transformer_blocks.0.ff.proj_out.weight",
        ),
        (
            "add_embedding.linear_2.weight",
            "add_time_embedding.linear_2.weight",
        ),
        (
            "encoder.mid_block.attentions.0.query.weight",
            "encoder.mid_block.attentions.0.to_q.weight",
        ),
        (
            "decoder.mid_block.attentions.0.key.bias",
            "decoder.mid_block.attentions.0.to_k.bias",
        ),
        (
            "decoder.mid_block.attentions.0.value.weight",
            "decoder.mid_block.attentions.0.to_v.weight",
        ),
        (
            "decoder.mid_block.attentions.0.proj_attn.weight",
            "decoder.mid_block.attentions.0.to_out.weight",
        ),
        (
            "embeddings.token_embedding.weight",
            "text_model.embeddings.token_embedding.weight",
        ),
        (
            "encoder.layers.0.self_attn.q_proj.weight",
            "text_model.encoder.layers.0.self_attn.q_proj.weight",
        ),
        ("final_layer_norm.bias", "text_model.final_layer_norm.bias"),
    ];

    #[test]
    fn every_rule_has_an_example_that_round_trips_in_its_dialect() {
        assert_eq!(EXAMPLES.len(), RULES.len());
        for ((file, burn), rule) in EXAMPLES.iter().zip(RULES) {
            let table = NameTable::for_file(rule.dialect.library(), [*file]);
            assert!(table.rules.iter().any(|r| r.file == rule.file), "{file}");
            assert_eq!(table.burn_path(file), *burn, "load {file}");
            assert_eq!(table.file_name(burn), *file, "name back {burn}");
        }
    }

    #[test]
    fn files_are_written_in_the_current_dialect_only() {
        let save = NameTable::for_save(Library::Diffusers);
        assert_eq!(
            save.file_name("encoder.mid_block.attentions.0.to_out.weight"),
            "encoder.mid_block.attentions.0.to_out.0.weight"
        );
        let clip = NameTable::for_save(Library::Transformers);
        assert_eq!(
            clip.file_name("text_model.encoder.layers.0.mlp.fc1.weight"),
            "text_model.encoder.layers.0.mlp.fc1.weight"
        );
        // A current-dialect file keeps the prefix and the modern names.
        let current = NameTable::for_file(
            Library::Transformers,
            ["text_model.final_layer_norm.weight"],
        );
        assert_eq!(
            current.file_name("text_model.final_layer_norm.gamma"),
            "text_model.final_layer_norm.weight"
        );
    }

    #[test]
    fn no_two_rules_of_one_library_match_one_name() {
        let all = [
            Dialect::LegacyVaeAttention,
            Dialect::UnprefixedClip,
            Dialect::Diffusers,
        ];
        for ((file, burn), rule) in EXAMPLES.iter().zip(RULES) {
            let table = NameTable::of(&all, rule.dialect.library());
            for (patterns, name) in [(table.load_patterns(), file), (table.save_patterns(), burn)] {
                let hits = patterns
                    .iter()
                    .filter(|(re, _)| Regex::new(re).unwrap().is_match(name))
                    .count();
                // The current `to_out` rule also matches a legacy VAE path;
                // legacy rules come first, so the first match is right.
                let allowed = if rule.file.contains("proj_attn") {
                    2
                } else {
                    1
                };
                assert!(hits >= 1 && hits <= allowed, "{name}: {hits} rules");
            }
        }
    }

    #[test]
    fn a_vae_file_is_not_read_as_an_unprefixed_clip_file() {
        let vae = NameTable::for_file(Library::Diffusers, ["encoder.conv_in.weight"]);
        assert_eq!(
            vae.burn_path("encoder.conv_in.weight"),
            "encoder.conv_in.weight"
        );
        let clip = NameTable::for_file(Library::Transformers, ["encoder.layers.0.mlp.fc1.bias"]);
        assert_eq!(
            clip.burn_path("encoder.layers.0.mlp.fc1.bias"),
            "text_model.encoder.layers.0.mlp.fc1.bias"
        );
    }

    #[test]
    fn norm_parameters_are_named_as_the_file_names_them() {
        let table = NameTable::for_save(Library::Diffusers);
        assert_eq!(
            table.file_name("down_blocks.0.resnets.0.norm1.gamma"),
            "down_blocks.0.resnets.0.norm1.weight"
        );
        assert_eq!(table.file_name("conv_norm_out.beta"), "conv_norm_out.bias");
    }
}
