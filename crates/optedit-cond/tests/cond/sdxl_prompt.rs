//! SDXL's text conditioning against diffusers: `encode_prompt` (both
//! encoders, pooled embedding, zero negatives), `_get_add_time_ids`, and the
//! second encoder's cases through the prompt path (ids from the tokenizer).

use optedit_cond::{sdxl_add_time_ids, CondError, SdxlPromptEncoder, SizeConditions};
use optedit_fixtures::TestBackend as B;
use optedit_fixtures::{assert_close, assert_output, cases_with_prefix, values, Case};

fn encoder(dir: &std::path::Path) -> SdxlPromptEncoder<B> {
    SdxlPromptEncoder::from_pipeline_dir(dir, &Default::default())
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
}

fn ids(t: burn::tensor::Tensor<B, 2, burn::tensor::Int>) -> Vec<i64> {
    t.to_data().convert::<i64>().to_vec().unwrap()
}

/// The token ids both tokenizers make for `texts` equal the case's input.
fn assert_ids(case: &Case, encoder: &SdxlPromptEncoder<B>, texts: &[&str]) {
    let want = case.load();
    let want = want.get("input.input_ids");
    for (i, got) in encoder.input_ids(texts).unwrap().into_iter().enumerate() {
        assert_eq!(got.dims().to_vec(), want.shape, "{}: ids shape", case.case);
        assert_eq!(
            ids(got),
            want.i64s(),
            "{}: ids of tokenizer {}",
            case.case,
            i + 1
        );
    }
}

#[test]
fn sdxl_encode_prompt_cases() {
    for case in cases_with_prefix("sdxl_encode_prompt") {
        let g = case.load();
        let encoder = encoder(&case.model_dir());
        let prompt = case.params["prompt"].as_str().expect("params.prompt");
        let zeros = case.params["force_zeros_for_empty_prompt"]
            .as_bool()
            .expect("params.force_zeros_for_empty_prompt");
        assert_eq!(
            encoder.force_zeros_for_empty_prompt(),
            zeros,
            "{}",
            case.case
        );
        assert_ids(&case, &encoder, &[prompt]);

        let out = encoder.encode_with_negative(prompt, None).unwrap();
        for name in case.outputs.keys() {
            match name.as_str() {
                "output.prompt_embeds" => assert_output(&case, &g, name, &out.cond.embeds),
                "output.negative_prompt_embeds" => {
                    assert_output(&case, &g, name, &out.uncond.embeds)
                }
                "output.pooled_prompt_embeds" => assert_output(&case, &g, name, &out.cond.pooled),
                "output.negative_pooled_prompt_embeds" => {
                    assert_output(&case, &g, name, &out.uncond.pooled)
                }
                other => panic!("{}: unknown output {other}", case.case),
            }
        }

        // A negative prompt given (even the empty one) is encoded, in the
        // same pass as the prompt.
        let tol = case.tolerance_for("output.prompt_embeds");
        let given = encoder.encode_with_negative(prompt, Some("")).unwrap();
        let alone = encoder.encode(&[prompt, ""]).unwrap();
        let [_, tokens, width] = alone.embeds.dims();
        assert_eq!(given.cond.embeds.dims(), [1, tokens, width]);
        assert_close(
            "cond",
            &values(&given.cond.embeds),
            &values(&alone.embeds.clone().narrow(0, 0, 1)),
            tol,
        );
        assert_close(
            "encoded negative",
            &values(&given.uncond.embeds),
            &values(&alone.embeds.narrow(0, 1, 1)),
            tol,
        );
        assert_close(
            "encoded negative pooled",
            &values(&given.uncond.pooled),
            &values(&alone.pooled.narrow(0, 1, 1)),
            tol,
        );
        assert_eq!(given.embeddings().concat().dims(), [2, tokens, width]);
        assert_eq!(given.concat_pooled().dims()[0], 2);
    }
}

/// The second encoder's cases through the SDXL prompt path: the case's
/// prompts tokenize to its ids and the pooled embedding is its
/// `text_embeds`.
#[test]
fn clip_text_encoder_with_projection_cases_through_prompt_encoding() {
    for case in cases_with_prefix("clip_text_encoder_with_projection") {
        let g = case.load();
        let encoder = encoder(case.model_dir().parent().unwrap());
        let prompts: Vec<&str> = case.params["prompts"]
            .as_array()
            .expect("params.prompts")
            .iter()
            .map(|p| p.as_str().expect("prompt string"))
            .collect();
        assert_ids(&case, &encoder, &prompts);
        let out = encoder.encode(&prompts).unwrap();
        assert_output(&case, &g, "output.text_embeds", &out.pooled);
        // The second half of the prompt embeddings is the second encoder's
        // penultimate hidden state.
        let want = g.get("output.penultimate_hidden_state");
        let width = want.shape[2];
        let total = out.embeds.dims()[2];
        let second = out.embeds.narrow(2, total - width, width);
        assert_output(&case, &g, "output.penultimate_hidden_state", &second);
    }
}

#[test]
fn sdxl_add_time_ids_cases() {
    for case in cases_with_prefix("sdxl_add_time_ids") {
        let g = case.load();
        let pair = |v: &serde_json::Value| -> (usize, usize) {
            let a = v.as_array().expect("a pair");
            (
                a[0].as_u64().unwrap() as usize,
                a[1].as_u64().unwrap() as usize,
            )
        };
        let rows: Vec<SizeConditions> = case.params["sizes"]
            .as_array()
            .expect("params.sizes")
            .iter()
            .map(|row| {
                let row = row.as_array().expect("(original, crop, target)");
                SizeConditions {
                    original_size: pair(&row[0]),
                    crop_top_left: pair(&row[1]),
                    target_size: pair(&row[2]),
                }
            })
            .collect();
        let got = sdxl_add_time_ids::<B>(&rows, &Default::default()).unwrap();
        assert_output(&case, &g, "output.add_time_ids", &got);
    }
    let err = sdxl_add_time_ids::<B>(&[], &Default::default()).unwrap_err();
    assert!(
        matches!(&err, CondError::InvalidArgument { argument, .. } if argument == "size_conditions"),
        "{err}"
    );
    assert_eq!(
        SizeConditions::uncropped(96, 64).time_ids(),
        [96.0, 64.0, 0.0, 0.0, 96.0, 64.0]
    );
}

#[test]
fn sdxl_model_index_is_read_strictly() {
    let case = &cases_with_prefix("sdxl_encode_prompt")[0];
    let tmp = tempfile::tempdir().unwrap();
    let index = tmp.path().join("model_index.json");
    std::fs::write(&index, r#"{"force_zeros_for_empty_prompt": "yes"}"#).unwrap();
    let err = optedit_cond::sdxl::force_zeros_for_empty_prompt(&index).unwrap_err();
    assert!(matches!(err, CondError::Json { .. }), "{err}");
    std::fs::write(&index, r#"{"force_zeros_for_empty_prompt": false}"#).unwrap();
    assert!(!optedit_cond::sdxl::force_zeros_for_empty_prompt(&index).unwrap());
    std::fs::write(&index, "{}").unwrap();
    assert!(optedit_cond::sdxl::force_zeros_for_empty_prompt(&index).unwrap());
    let err = optedit_cond::sdxl::force_zeros_for_empty_prompt(&tmp.path().join("none.json"))
        .unwrap_err();
    assert!(err.to_string().contains("none.json"), "{err}");
    // A folder without the second encoder names it.
    let err = SdxlPromptEncoder::<B>::from_pipeline_dir(
        case.model_dir().parent().unwrap().join("tiny-sd").as_path(),
        &Default::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("_2"), "{err}");
}
