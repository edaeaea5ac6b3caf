//! The same UNet forward and forward+backward on two backends: burn's `Flex`
//! CPU backend and, when built with `--features cuda`, CUDA; the outputs are
//! compared and the timings printed.
//!
//! ```text
//! cargo run --release -p optedit-examples --example backend_comparison [SD_FOLDER]
//! cargo run --release -p optedit-examples --features cuda --example backend_comparison [SD_FOLDER]
//! ```

use std::time::Instant;

use burn::backend::{Autodiff, Flex};
use burn::module::Module;
use burn::tensor::{backend::Backend, Tensor, TensorData};
use optedit_examples::model_dir;
use optedit_models::UNet2DConditionModel;

fn run<Bk: Backend>(
    name: &str,
    x: &[f32],
    shape: [usize; 4],
) -> Result<Vec<f32>, Box<dyn std::error::Error>> {
    let device = Default::default();
    let unet =
        UNet2DConditionModel::<Autodiff<Bk>>::load(&model_dir().join("unet"), &device)?.no_grad();
    let dim = unet.config.cross_attention_dim;
    let z = Tensor::<Autodiff<Bk>, 4>::from_data(TensorData::new(x.to_vec(), shape), &device);
    let t = Tensor::from_data([500.0f32].as_slice(), &device);
    let ctx = Tensor::<Autodiff<Bk>, 3>::ones([shape[0], 77, dim], &device).mul_scalar(0.1);
    let t0 = Instant::now();
    let out = unet.forward(z.clone(), t.clone(), ctx.clone())?;
    let values = out
        .into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .map_err(|e| format!("{e:?}"))?;
    let fwd = t0.elapsed();
    let t1 = Instant::now();
    let zg = z.require_grad();
    let loss = unet.forward(zg.clone(), t, ctx)?.powi_scalar(2).mean();
    let grad = zg.grad(&loss.backward()).ok_or("no gradient")?;
    let _ = grad.into_data();
    println!(
        "{name:>5}: forward {fwd:.2?}, forward+backward {:.2?}",
        t1.elapsed()
    );
    Ok(values)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let shape = [1, 4, 16, 16];
    let x: Vec<f32> = (0..shape.iter().product::<usize>())
        .map(|i| ((i * 7919) % 200) as f32 / 100.0 - 1.0)
        .collect();
    let cpu = run::<Flex>("flex", &x, shape)?;
    #[cfg(feature = "cuda")]
    {
        let gpu = run::<burn::backend::Cuda>("cuda", &x, shape)?;
        let max = cpu
            .iter()
            .zip(&gpu)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        println!("max |flex - cuda| = {max:.3e}");
    }
    #[cfg(not(feature = "cuda"))]
    println!(
        "(build with --features cuda to compare with the CUDA backend; {} outputs computed)",
        cpu.len()
    );
    Ok(())
}
