//! Forward-only work on an autodiff backend must not keep memory: burn 0.21
//! sweeps its graph store only on `backward`. The editor runs its
//! forward-only stages on the inner backend, so they register nothing and
//! nobody needs `optedit_edit::release_graphs`; these tests check both.
//! Live heap bytes are counted by this test binary's own global allocator;
//! the tests share it, so they run one at a time.

use burn::backend::autodiff::checkpoint::strategy::BalancedCheckpointing;
use burn::backend::{Autodiff, Flex};
use burn::tensor::Tensor;
use optedit_edit::{
    release_graphs, EditCondition, EditConfig, Editor, SdPipeline, Silent, UserMask,
};
use optedit_fixtures::alloc::{growth_over, live_bytes as live, serial, CountingAllocator};
use optedit_fixtures::{cases_with_prefix, fixtures_dir};

/// What the `optedit` binary runs on.
type AD = Autodiff<Flex, BalancedCheckpointing>;

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

#[test]
fn release_graphs_frees_what_forward_only_operations_registered() {
    let _serial = serial();
    let device = Default::default();
    release_graphs::<AD>(&device);
    let before = live();
    let forward_only = || {
        for _ in 0..2000 {
            let x = Tensor::<AD, 2>::ones([4, 4], &device);
            drop((x.clone().mul_scalar(2.0) + x).exp().sum());
        }
    };
    forward_only();
    // Every tensor is gone, yet burn keeps their graph entries...
    let kept = live() - before;
    assert!(kept > 1_000_000, "{kept} bytes kept by 8000 operations");
    // ...until they are swept. What stays is the graph store's hash-table
    // capacity, which a second round reuses instead of growing.
    release_graphs::<AD>(&device);
    let left = live() - before;
    assert!(
        left < kept / 4,
        "{left} of {kept} bytes left after the sweep"
    );
    forward_only();
    release_graphs::<AD>(&device);
    let again = live() - before - left;
    assert!(
        again < kept / 100,
        "{again} more bytes left after a second round"
    );
}

/// The tiny pipeline and the fixture's input image.
fn fixture(device: &burn::tensor::Device<AD>) -> (SdPipeline<AD>, Tensor<AD, 4>) {
    let p = SdPipeline::<AD>::load(&fixtures_dir().join("tiny-sd"), device).unwrap();
    let image = cases_with_prefix("vae_encode")
        .remove(0)
        .load()
        .tensor("input.image", device);
    (p, image)
}

/// The left half of an `h x w` image.
fn left_half(h: usize, w: usize) -> UserMask {
    let pixels = (0..h * w).map(|i| f32::from(i % w < w / 2)).collect();
    UserMask::new(pixels, w, h).unwrap()
}

/// Bytes a graph sweep frees right after `run` (run once before, and swept,
/// so that only what `run` itself left behind counts).
fn swept_after(device: &burn::tensor::Device<AD>, run: impl Fn()) -> isize {
    run();
    release_graphs::<AD>(device);
    run();
    let before_sweep = live();
    release_graphs::<AD>(device);
    (before_sweep - live()).max(0)
}

#[test]
fn repeated_baseline_edits_do_not_accumulate_memory() {
    let _serial = serial();
    let device = Default::default();
    let (p, image) = fixture(&device);
    let config = EditConfig {
        num_steps: 10,
        strength: 1.0,
        ..EditConfig::default()
    };
    let editor = Editor::new(&p, config).unwrap();
    let source = editor.encode_prompt("a photo of a cat", None).unwrap();
    let condition = EditCondition::text(editor.encode_prompt("a painting of a dog", None).unwrap());
    let [_, _, h, w] = image.dims();
    let edit = || {
        let d = editor
            .diffedit(
                image.clone(),
                &source,
                &condition,
                &mut left_half(h, w),
                &mut Silent,
            )
            .unwrap();
        let s = editor
            .sdedit(image.clone(), &condition, &mut Silent)
            .unwrap();
        drop((d, s));
    };
    let growth = growth_over(3, edit);
    // Run on the autodiff backend, these three runs would keep several
    // megabytes (hundreds of UNet and VAE operations each).
    assert!(
        growth < 256 * 1024,
        "{growth} bytes more after three DiffEdit + SDEdit runs"
    );
    // Nothing was left for a sweep to free: the stages registered no graph
    // entries (on the autodiff backend one run leaves megabytes to sweep).
    let swept = swept_after(&device, edit);
    assert!(
        swept < 16 * 1024,
        "a sweep after DiffEdit + SDEdit freed {swept} bytes of graph entries"
    );
}

/// The whole method's forward-only stages (encode, inversion, mask, the
/// plain denoising steps, decode) register nothing either; its gradient
/// steps free their own graphs in `backward`: with the exact gradient
/// (through the network) and with the default held prediction.
#[test]
fn an_optimise_edit_leaves_nothing_to_sweep() {
    use optedit_edit::GuidanceGradient;
    let _serial = serial();
    let device = Default::default();
    let (p, image) = fixture(&device);
    for gradient in [
        GuidanceGradient::Both,
        EditConfig::default().guidance_gradient,
    ] {
        let config = EditConfig {
            num_steps: 6,
            t_u: 2,
            strength: 1.0,
            guidance_gradient: gradient,
            ..EditConfig::default()
        };
        let editor = Editor::new(&p, config).unwrap();
        let source = editor.encode_prompt("a photo of a cat", None).unwrap();
        let condition =
            EditCondition::text(editor.encode_prompt("a painting of a dog", None).unwrap());
        let [_, _, h, w] = image.dims();
        let swept = swept_after(&device, || {
            drop(
                editor
                    .edit(
                        image.clone(),
                        &source,
                        &condition,
                        &mut left_half(h, w),
                        &mut Silent,
                    )
                    .unwrap(),
            );
        });
        assert!(
            swept < 16 * 1024,
            "a sweep after an optimise edit ({gradient:?}) freed {swept} bytes of graph entries"
        );
    }
}

/// What a gradient step's prediction keeps for its backward pass, by
/// [`GuidanceGradient`]: the exact gradient records both branches, the
/// conditional one only the conditional branch (the unconditional branch
/// runs on an untracked copy of the latent), the detached one nothing.
/// `detach` alone would not do it: burn keeps a leaf's `require_grad` on
/// the detached copy, and the network's graph (and backward pass) with it.
#[test]
fn a_detached_branch_records_no_graph() {
    use optedit_edit::{Denoiser, GuidanceGradient};
    let _serial = serial();
    let device = Default::default();
    let (p, image) = fixture(&device);
    let editor = Editor::new(&p, EditConfig::default()).unwrap();
    let prompt = editor.encode_prompt("a painting of a dog", None).unwrap();
    let z = p.encode_image(image).unwrap().detach();
    let held = |gradient| {
        let d = Denoiser::for_prompt(&p, &prompt, 7.5, Vec::new()).with_gradient(gradient);
        let run = || {
            let z = z.clone().require_grad();
            let before = live();
            let eps = d.predict(z, 501, 0, 1).unwrap();
            let held = live() - before;
            drop(eps);
            release_graphs::<AD>(&device);
            held
        };
        run();
        run()
    };
    let both = held(GuidanceGradient::Both);
    let conditional = held(GuidanceGradient::Conditional);
    let detached = held(GuidanceGradient::Detached);
    eprintln!(
        "bytes held by one prediction: both {both}, conditional {conditional}, detached {detached}"
    );
    assert!(both > 0);
    assert!(
        conditional < both * 3 / 4,
        "the conditional gradient keeps {conditional} bytes against {both} for both branches"
    );
    assert!(
        detached < both / 4,
        "the detached gradient keeps {detached} bytes against {both} for both branches"
    );
}
