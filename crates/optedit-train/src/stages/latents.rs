//! Stage 2: encode a fixed set of training scenes once with the trained VAE
//! (the posterior mean), measure the latent scale as diffusers does for SD
//! (`scaling_factor = 1 / std(latents)`), and keep the scaled latents on disk
//! for the UNet and ControlNet stages.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use burn::tensor::{backend::Backend, Tensor, TensorData};
use indicatif::{ProgressBar, ProgressStyle};
use optedit_cond::image::rgb_batch_to_signed_tensor;
use optedit_models::AutoencoderKL;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::{mix, train_scene_seed};
use crate::demo::LATENT_SIZE;
use crate::error::{io, Result, TrainError};

/// The encoded training set.
#[derive(Debug, Clone)]
pub struct LatentSet {
    /// World seed of each scene.
    pub seeds: Vec<u64>,
    /// Scaled latents, `[n, 4, 32, 32]` flattened.
    pub latents: Vec<f32>,
    /// `1 / std` of the unscaled latents.
    pub scaling_factor: f64,
}

#[derive(Serialize, Deserialize)]
struct Meta {
    seeds: Vec<u64>,
    scaling_factor: f64,
}

const PER: usize = 4 * LATENT_SIZE * LATENT_SIZE;

impl LatentSet {
    /// Number of scenes.
    pub fn len(&self) -> usize {
        self.seeds.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.seeds.is_empty()
    }

    /// The latents of scenes `indices` as `[k, 4, 32, 32]`.
    pub fn batch<B: Backend>(&self, indices: &[usize], device: &B::Device) -> Tensor<B, 4> {
        let mut data = Vec::with_capacity(indices.len() * PER);
        for &i in indices {
            data.extend_from_slice(&self.latents[i * PER..(i + 1) * PER]);
        }
        Tensor::from_data(
            TensorData::new(data, [indices.len(), 4, LATENT_SIZE, LATENT_SIZE]),
            device,
        )
    }

    fn paths(dir: &Path) -> (PathBuf, PathBuf) {
        (dir.join("latents.json"), dir.join("latents.f32"))
    }

    /// Reads the set written by [`encode`].
    pub fn load(dir: &Path) -> Result<Self> {
        let (meta_path, data_path) = Self::paths(dir);
        let text = std::fs::read_to_string(&meta_path).map_err(io(&meta_path))?;
        let meta: Meta = serde_json::from_str(&text).map_err(|e| TrainError::Checkpoint {
            path: meta_path.clone(),
            message: e.to_string(),
        })?;
        let mut bytes = Vec::new();
        std::fs::File::open(&data_path)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .map_err(io(&data_path))?;
        if bytes.len() != meta.seeds.len() * PER * 4 {
            return Err(TrainError::Checkpoint {
                path: data_path,
                message: format!("{} bytes for {} scenes", bytes.len(), meta.seeds.len()),
            });
        }
        let latents = bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Ok(Self {
            seeds: meta.seeds,
            latents,
            scaling_factor: meta.scaling_factor,
        })
    }

    fn save(&self, dir: &Path) -> Result<()> {
        let (meta_path, data_path) = Self::paths(dir);
        let mut f = std::fs::File::create(&data_path).map_err(io(&data_path))?;
        let bytes: Vec<u8> = self.latents.iter().flat_map(|v| v.to_le_bytes()).collect();
        f.write_all(&bytes).map_err(io(&data_path))?;
        let meta = Meta {
            seeds: self.seeds.clone(),
            scaling_factor: self.scaling_factor,
        };
        std::fs::write(
            &meta_path,
            serde_json::to_string(&meta).expect("serialisable"),
        )
        .map_err(io(&meta_path))
    }
}

/// Encodes `count` training scenes (seeded by `seed`) into `dir`, or loads
/// the set already there when it has the same size.
pub fn encode<B: Backend>(
    dir: &Path,
    vae: &AutoencoderKL<B>,
    count: usize,
    seed: u64,
    device: &B::Device,
) -> Result<LatentSet> {
    if let Ok(set) = LatentSet::load(dir) {
        if set.len() == count {
            return Ok(set);
        }
    }
    let mut rng = ChaCha8Rng::seed_from_u64(mix(&[seed, 2]));
    let seeds: Vec<u64> = (0..count).map(|_| train_scene_seed(&mut rng)).collect();
    let bar = ProgressBar::new(count as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix:>10} [{elapsed_precise}] {bar:30} {pos}/{len} (eta {eta})",
        )
        .expect("valid"),
    );
    bar.set_prefix("latents");
    let mut latents = Vec::with_capacity(count * PER);
    for chunk in seeds.chunks(32) {
        let images: Vec<_> = chunk
            .par_iter()
            .map(|&s| optedit_world::SceneSpec::sample(s).render().image)
            .collect();
        let mean = vae
            .encode(rgb_batch_to_signed_tensor::<B, _>(&images, device))?
            .mean;
        latents.extend(
            mean.into_data()
                .convert::<f32>()
                .into_vec::<f32>()
                .expect("f32 data"),
        );
        bar.inc(chunk.len() as u64);
    }
    bar.finish();
    let n = latents.len() as f64;
    let mean = latents.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = latents
        .iter()
        .map(|&v| (v as f64 - mean).powi(2))
        .sum::<f64>()
        / n;
    let scaling_factor = 1.0 / var.sqrt().max(1e-6);
    for v in &mut latents {
        *v *= scaling_factor as f32;
    }
    let set = LatentSet {
        seeds,
        latents,
        scaling_factor,
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    set.save(dir)?;
    Ok(set)
}
