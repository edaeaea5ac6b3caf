//! The prompt-encoding path against transformers: the case's prompts are
//! tokenized here (ids must equal the reference input) and encoded by the CLIP
//! text encoder (embeddings within the case's tolerance).

use optedit_cond::{CondError, PromptEncoder};
use optedit_fixtures::{assert_close, assert_output, cases_with_prefix, values, TestBackend as B};

fn prompts(case: &optedit_fixtures::Case) -> Vec<String> {
    case.params["prompts"]
        .as_array()
        .expect("params.prompts")
        .iter()
        .map(|p| p.as_str().expect("prompt string").to_owned())
        .collect()
}

fn encoder(case: &optedit_fixtures::Case) -> PromptEncoder<B> {
    let dir = case.model_dir();
    let device = Default::default();
    PromptEncoder::load(&dir.parent().unwrap().join("tokenizer"), &dir, &device).unwrap()
}

#[test]
fn clip_text_encoder_cases_through_prompt_encoding() {
    for case in cases_with_prefix("clip_text_encoder") {
        // SDXL's second encoder: sdxl_prompt.rs.
        if case.case.starts_with("clip_text_encoder_with_projection") {
            continue;
        }
        let golden = case.load();
        let encoder = encoder(&case);
        let prompts = prompts(&case);
        let refs: Vec<&str> = prompts.iter().map(String::as_str).collect();

        let ids = encoder.input_ids(&refs).unwrap();
        let got: Vec<i64> = ids.to_data().convert::<i64>().to_vec().unwrap();
        let want = golden.get("input.input_ids");
        assert_eq!(ids.dims().to_vec(), want.shape, "{}: ids shape", case.case);
        assert_eq!(got, want.i64s(), "{}: token ids", case.case);

        let out = encoder.encode_output(&refs).unwrap();
        assert_output(
            &case,
            &golden,
            "output.last_hidden_state",
            &out.last_hidden_state,
        );
        assert_output(&case, &golden, "output.pooler_output", &out.pooler_output);
    }
}

#[test]
fn negative_prompts_are_encoded_in_the_same_batch() {
    let case = &cases_with_prefix("clip_text_encoder")[0];
    let encoder = encoder(case);
    let prompts = prompts(case);
    let tol = case.tolerance_for("output.last_hidden_state");
    let (p, n) = (prompts[0].as_str(), prompts[prompts.len() - 1].as_str());

    let pair = encoder.encode_with_negative(p, Some(n)).unwrap();
    let alone = encoder.encode(&[p, n]).unwrap();
    let [_, tokens, hidden] = alone.dims();
    assert_eq!(pair.cond.dims(), [1, tokens, hidden]);
    assert_eq!(pair.len(), 1);
    assert_close(
        "cond",
        &values(&pair.cond),
        &values(&alone.clone().narrow(0, 0, 1)),
        tol,
    );
    assert_close(
        "uncond",
        &values(&pair.uncond),
        &values(&alone.narrow(0, 1, 1)),
        tol,
    );
    let both = pair.concat();
    assert_eq!(both.dims(), [2, tokens, hidden]);

    // The default negative prompt is the empty one.
    let default = encoder.encode_with_negative(p, None).unwrap();
    let empty = encoder.encode(&[""]).unwrap();
    assert_close(
        "default uncond",
        &values(&default.uncond),
        &values(&empty),
        tol,
    );
}

#[test]
fn prompt_batches_are_checked() {
    let case = &cases_with_prefix("clip_text_encoder")[0];
    let encoder = encoder(case);
    let err = encoder
        .encode_batch_with_negative(&["a", "b"], Some(&["c"]))
        .unwrap_err();
    assert!(
        matches!(&err, CondError::InvalidArgument { argument, .. } if argument == "negative_prompts"),
        "{err}"
    );
    let err = encoder.encode_batch_with_negative(&[], None).unwrap_err();
    assert!(
        matches!(&err, CondError::InvalidArgument { argument, .. } if argument == "prompts"),
        "{err}"
    );
    let err = PromptEncoder::<B>::load(
        std::path::Path::new("/nonexistent/tokenizer"),
        &case.model_dir(),
        &Default::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("/nonexistent/tokenizer"), "{err}");
}
