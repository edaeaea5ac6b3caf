//! The facade on the tiny fixture models (every shape from the fixture's
//! own files): one call edits a photo of any size with each method, the
//! result keeps the photo's size and border, bad input is refused by name;
//! fitting and writing photos.

use image::{DynamicImage, GrayImage, Luma, Rgb, RgbImage};
use optedit::images::{self, Fit, Format};
use optedit::{
    Control, CpuBackend, EditConfig, Error, Instruction, MaskChoice, Method, Options, Pipeline,
    Silent,
};
use optedit_fixtures::fixtures_dir;

fn pipeline() -> Pipeline<CpuBackend> {
    Pipeline::load(fixtures_dir().join("tiny-sd"), &Default::default()).unwrap()
}

/// A photo a few pixels off the VAE's factor on both sides, at most
/// `max` wide.
fn photo(p: &Pipeline<CpuBackend>) -> RgbImage {
    let f = p.sd().vae_scale() as u32;
    let (w, h) = (8 * f + 3, 5 * f + 2);
    RgbImage::from_fn(w, h, |x, y| {
        Rgb([(x * 7 % 256) as u8, (y * 11 % 256) as u8, 90])
    })
}

fn options(method: Method) -> Options {
    Options {
        method,
        config: EditConfig {
            num_steps: 4,
            strength: 1.0,
            t_u: 2,
            k: 1,
            ..EditConfig::default()
        },
        max_side: Some(u32::MAX),
        ..Options::default()
    }
}

#[test]
fn one_call_edits_with_each_method_at_the_photos_size() {
    let p = pipeline();
    let photo = photo(&p);
    let input = DynamicImage::ImageRgb8(photo.clone());
    let f = p.sd().vae_scale() as u32;
    let (w, h) = photo.dimensions();
    // The left half may change.
    let mask = GrayImage::from_fn(w, h, |x, _| Luma([if x < w / 2 { 255 } else { 0 }]));
    for method in Method::ALL {
        let instruction = Instruction::new("a photo of a cat", "a painting of a dog");
        let instruction = if method.uses_mask() {
            instruction.with_mask(MaskChoice::Image(mask.clone()))
        } else {
            instruction
        };
        let opts = Options {
            guidance_image: true,
            ..options(method)
        };
        let out = p.edit(&input, &instruction, &opts, &mut Silent).unwrap();
        assert_eq!(out.image.dimensions(), (w, h), "{method}");
        // Only the optimisation makes a guidance trajectory (lambda < 1,
        // a mask that is not empty).
        assert!(!out.mask_empty, "{method}");
        match (method, &out.guidance) {
            (Method::Optimise, Some(g)) => assert_eq!(g.dimensions(), (w, h)),
            (Method::Optimise, None) => panic!("no guidance image"),
            (_, g) => assert!(g.is_none(), "{method}"),
        }
        // Not scaled; cropped to multiples of the factor, centred.
        assert_eq!(out.fit.size(), (w / f * f, h / f * f), "{method}");
        assert_eq!(out.model_image.dimensions(), out.fit.size());
        let [x0, y0, cw, ch] = out.fit.crop;
        // The border the crop dropped keeps the photo's pixels, the crop
        // holds the model's result.
        assert_eq!(out.image.get_pixel(0, 0), photo.get_pixel(0, 0));
        assert_eq!(
            out.image.get_pixel(w - 1, h - 1),
            photo.get_pixel(w - 1, h - 1)
        );
        assert_eq!(out.image.get_pixel(x0, y0), out.model_image.get_pixel(0, 0));
        assert_eq!(
            out.image.get_pixel(x0 + cw - 1, y0 + ch - 1),
            out.model_image.get_pixel(cw - 1, ch - 1)
        );
        assert_ne!(out.image, photo, "{method} changed nothing");
        match method {
            Method::SdEdit => assert!(out.mask.is_none()),
            _ => {
                let m = out.mask.as_ref().unwrap();
                assert_eq!(m.dimensions(), (w, h));
                // The user's mask, cropped like the photo, at latent cells.
                assert_eq!(m.get_pixel(x0, h / 2)[0], 255, "{method}");
                assert_eq!(m.get_pixel(x0 + cw - 1, h / 2)[0], 0, "{method}");
            }
        }
        assert!(out.total_time().as_nanos() > 0);
    }
}

#[test]
fn large_photos_are_scaled_down_and_put_back() {
    let p = pipeline();
    let f = p.sd().vae_scale() as u32;
    let photo = RgbImage::from_pixel(24 * f, 12 * f, Rgb([40, 120, 200]));
    let input = DynamicImage::ImageRgb8(photo.clone());
    let mut o = options(Method::SdEdit);
    o.max_side = Some(8 * f);
    let out = p
        .edit(&input, &Instruction::new("a", "b"), &o, &mut Silent)
        .unwrap();
    assert_eq!(out.fit.size(), (8 * f, 4 * f));
    assert!(out.fit.is_scaled());
    assert_eq!(out.image.dimensions(), photo.dimensions());
}

#[test]
fn bad_instructions_are_refused_by_name() {
    let p = pipeline();
    let input = DynamicImage::ImageRgb8(photo(&p));
    let control = Control {
        net: 0,
        image: RgbImage::new(8, 8),
        scale: 1.0,
    };
    let e = p
        .edit(
            &input,
            &Instruction::new("a", "b").with_control(control),
            &options(Method::Optimise),
            &mut Silent,
        )
        .unwrap_err();
    assert!(e.to_string().contains("controls[0].net"), "{e}");
    let e = p
        .edit(
            &input,
            &Instruction::new("a", "b").with_mask(MaskChoice::Full),
            &options(Method::SdEdit),
            &mut Silent,
        )
        .unwrap_err();
    assert!(e.to_string().contains("uses no mask"), "{e}");
    let mut bad = options(Method::Optimise);
    bad.config.lambda = 2.0;
    let e = p
        .edit(&input, &Instruction::new("a", "b"), &bad, &mut Silent)
        .unwrap_err();
    assert!(e.to_string().contains("lambda"), "{e}");
    // Model paths: missing folders and pickle checkpoints.
    let tmp = tempfile::tempdir().unwrap();
    let e = Pipeline::<CpuBackend>::load(tmp.path().join("nope"), &Default::default()).unwrap_err();
    assert!(e.to_string().contains("no such folder"), "{e}");
    let ckpt = tmp.path().join("v1-5.ckpt");
    std::fs::write(&ckpt, b"x").unwrap();
    let e = Pipeline::<CpuBackend>::load(&ckpt, &Default::default()).unwrap_err();
    assert!(e.to_string().contains("safetensors"), "{e}");
    assert!(matches!(
        pipeline().with_controlnet(tmp.path().join("cn")),
        Err(Error::InvalidArgument { .. })
    ));
}

#[test]
fn fits_scale_crop_and_restore() {
    // No limit: only the crop, centred.
    let fit = Fit::new(70, 45, None, 8).unwrap();
    assert_eq!((fit.size(), fit.crop[0], fit.crop[1]), ((64, 40), 3, 2));
    assert!(!fit.is_scaled());
    // Scaled so that the long side is 64, then cropped to multiples of 8.
    let fit = Fit::new(1000, 600, Some(64), 8).unwrap();
    assert_eq!((fit.scaled_width, fit.scaled_height), (64, 38));
    assert_eq!(fit.size(), (64, 32));
    // Never scaled up.
    assert!(!Fit::new(40, 40, Some(768), 8).unwrap().is_scaled());
    // Put back: the region of the input the crop covers takes the result.
    let original = RgbImage::from_pixel(1000, 600, Rgb([0, 0, 0]));
    let edited = RgbImage::from_pixel(64, 32, Rgb([255, 255, 255]));
    let back = fit.restore(&original, &edited);
    assert_eq!(back.dimensions(), (1000, 600));
    assert_eq!(back.get_pixel(500, 300)[0], 255);
    assert_eq!(back.get_pixel(500, 5)[0], 0, "the dropped top border");
    let mask = fit.restore_gray(&GrayImage::from_pixel(64, 32, Luma([255])));
    assert_eq!(
        (mask.get_pixel(500, 300)[0], mask.get_pixel(500, 5)[0]),
        (255, 0)
    );
    // A mask of the input's size is fitted like the input.
    let half = GrayImage::from_fn(1000, 600, |x, _| Luma([if x < 500 { 255 } else { 0 }]));
    let fitted = fit.apply_gray(&half);
    assert_eq!(fitted.dimensions(), (64, 32));
    assert_eq!(
        (fitted.get_pixel(10, 10)[0], fitted.get_pixel(50, 10)[0]),
        (255, 0)
    );
    // Refusals.
    assert!(Fit::new(0, 10, None, 8).is_err());
    assert!(Fit::new(7, 100, None, 8).is_err());
    assert!(Fit::new(100, 100, Some(4), 8).is_err());
    assert!(Fit::new(100, 100, None, 0).is_err());
}

#[test]
fn images_are_written_by_extension_and_atomically() {
    let tmp = tempfile::tempdir().unwrap();
    let image = RgbImage::from_fn(9, 5, |x, y| Rgb([x as u8 * 20, y as u8 * 40, 3]));
    for (name, format) in [
        ("a.png", Format::Png),
        ("b.JPG", Format::Jpeg),
        ("c.jpeg", Format::Jpeg),
        ("d.webp", Format::WebP),
    ] {
        let path = tmp.path().join(name);
        assert_eq!(Format::of(&path).unwrap(), format);
        images::write(&path, &DynamicImage::ImageRgb8(image.clone())).unwrap();
        let back = images::read(&path).unwrap().to_rgb8();
        assert_eq!(back.dimensions(), (9, 5), "{name}");
        if format != Format::Jpeg {
            assert_eq!(back, image, "{name} is lossless");
        }
    }
    let e = images::write(
        tmp.path().join("e.gif"),
        &DynamicImage::ImageRgb8(image.clone()),
    )
    .unwrap_err();
    assert!(matches!(e, Error::UnknownFormat { .. }), "{e}");
    // A folder that does not exist: an error and no file anywhere.
    let missing = tmp.path().join("no/such/dir/out.png");
    assert!(images::write(&missing, &DynamicImage::ImageRgb8(image)).is_err());
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// The guidance image is the guidance stage's clean result: asking for it
/// runs the stage to the end even where the edit itself stops it after
/// `t_u` steps (the default held prediction), and the edit is the same.
#[test]
fn the_guidance_image_runs_the_guidance_stage_to_the_end() {
    let p = pipeline();
    let photo = photo(&p);
    let input = DynamicImage::ImageRgb8(photo.clone());
    let (w, h) = photo.dimensions();
    let mask = GrayImage::from_fn(w, h, |x, _| Luma([if x < w / 2 { 255 } else { 0 }]));
    let instruction = Instruction::new("a photo of a cat", "a painting of a dog")
        .with_mask(MaskChoice::Image(mask));
    let base = options(Method::Optimise);
    assert!(
        base.config.guidance_steps().end < base.config.num_steps,
        "the edit alone would run the whole guidance stage: nothing to check"
    );
    let edit = |guidance_to_end| {
        let opts = Options {
            guidance_image: true,
            config: EditConfig {
                guidance_to_end,
                ..base.config.clone()
            },
            ..base.clone()
        };
        p.edit(&input, &instruction, &opts, &mut Silent).unwrap()
    };
    let (asked, explicit) = (edit(false), edit(true));
    assert_eq!(asked.guidance, explicit.guidance);
    assert_eq!(asked.image, explicit.image);
}
