//! `.safetensors` reading and writing: files written by `safetensors.torch.save_file` (see
//! `fixtures/make_fixtures.py`), byte-exact encoding, round trips, and one test per malformed input.

use kiln_runtime::io::safetensors::{encode_safetensors, parse_safetensors, read_safetensors};
use kiln_runtime::{RuntimeError, Tensor};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn t(data: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_slice(data, shape).unwrap()
}

fn bits(t: &Tensor) -> Vec<u32> {
    t.data().iter().map(|v| v.to_bits()).collect()
}

/// A file with this JSON header (length filled in) followed by `data`.
fn st_bytes(header: &str, data: &[u8]) -> Vec<u8> {
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

/// The message of a `RuntimeError::Safetensors` (panics on any other result: a test helper).
fn st_msg<T: std::fmt::Debug>(result: kiln_runtime::Result<T>) -> String {
    match result {
        Err(RuntimeError::Safetensors { msg, .. }) => msg,
        other => panic!("expected RuntimeError::Safetensors, got {other:?}"),
    }
}

fn parse_err(header: &str, data_len: usize) -> String {
    st_msg(parse_safetensors(
        &st_bytes(header, &vec![0; data_len]),
        Path::new("x.safetensors"),
    ))
}

#[test]
fn reads_a_pytorch_batchnorm_state_dict() {
    let st = read_safetensors(&fixture("bn_state_dict.safetensors")).unwrap();
    // Conv2d(1, 2, 2) weight: i / 4 - 1 for i = 0..8.
    let weight = [-1.0, -0.75, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75];
    let expected = [
        ("0.weight", t(&weight, &[2, 1, 2, 2])),
        ("0.bias", t(&[0.5, -0.5], &[2])),
        ("1.weight", t(&[1.0, 2.0], &[2])),
        ("1.bias", t(&[0.25, -0.25], &[2])),
        ("1.running_mean", t(&[0.125, -0.375], &[2])),
        ("1.running_var", t(&[1.5, 0.75], &[2])),
    ];
    assert_eq!(st.tensors.len(), expected.len());
    for (name, tensor) in &expected {
        assert_eq!(st.get(name).unwrap(), Some(tensor), "{name}");
    }
    // BatchNorm's step counter is int64: listed, and asking for it names it.
    let unsupported: Vec<(&str, &str)> = st
        .unsupported
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(unsupported, vec![("1.num_batches_tracked", "I64")]);
    let msg = st_msg(st.get("1.num_batches_tracked"));
    assert_eq!(
        msg,
        "tensor `1.num_batches_tracked` has dtype I64; only F32 is supported"
    );
    assert!(st.get("2.weight").unwrap().is_none());
    assert_eq!(st.path, fixture("bn_state_dict.safetensors"));
}

/// The tensors of `f32_only.safetensors`.
fn f32_only() -> BTreeMap<String, Tensor> {
    BTreeMap::from([
        // torch.arange(6.).reshape(2, 3) * 0.5 - 1
        (
            "b".to_string(),
            t(&[-1.0, -0.5, 0.0, 0.5, 1.0, 1.5], &[2, 3]),
        ),
        ("a.w".to_string(), t(&[3.25], &[1])),
        ("scalar".to_string(), t(&[-2.0], &[])),
        ("empty".to_string(), Tensor::zeros(&[0, 2]).unwrap()),
    ])
}

#[test]
fn reads_f32_scalars_and_empty_tensors() {
    let st = read_safetensors(&fixture("f32_only.safetensors")).unwrap();
    assert_eq!(st.tensors, f32_only());
    assert!(st.unsupported.is_empty());
}

#[test]
fn encodes_the_bytes_pytorch_writes() {
    let written = std::fs::read(fixture("f32_only.safetensors")).unwrap();
    assert_eq!(encode_safetensors(&f32_only()), written);
}

#[test]
fn keeps_other_dtypes_by_name_and_reads_metadata_files() {
    let st = read_safetensors(&fixture("mixed_dtypes.safetensors")).unwrap();
    assert_eq!(
        st.tensors,
        BTreeMap::from([("f32".to_string(), t(&[1.0, -1.0], &[2]))])
    );
    let unsupported: Vec<(&str, &str)> = st
        .unsupported
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        unsupported,
        vec![
            ("bf16", "BF16"),
            ("bool", "BOOL"),
            ("f16", "F16"),
            ("f64", "F64"),
            ("i32", "I32"),
            ("i64", "I64"),
            ("u8", "U8"),
        ]
    );
}

#[test]
fn round_trip_with_awkward_names() {
    let tensors = BTreeMap::from([
        ("quote\"back\\slash".to_string(), t(&[1.0], &[1])),
        (
            "new\nline\ttab\u{1}".to_string(),
            t(&[f32::NAN, -0.0], &[2, 1]),
        ),
        ("ünïcödé.🙂".to_string(), t(&[f32::INFINITY], &[])),
        ("".to_string(), Tensor::zeros(&[3, 0]).unwrap()),
    ]);
    let st = parse_safetensors(&encode_safetensors(&tensors), Path::new("m")).unwrap();
    assert_eq!(st.tensors.len(), tensors.len());
    for (name, tensor) in &tensors {
        let back = &st.tensors[name];
        assert_eq!(back.shape(), tensor.shape(), "{name:?}");
        assert_eq!(bits(back), bits(tensor), "{name:?}");
    }
}

#[test]
fn encoding_skips_the_reserved_metadata_name() {
    let tensors = BTreeMap::from([
        ("__metadata__".to_string(), t(&[1.0], &[1])),
        ("w".to_string(), t(&[2.0], &[1])),
    ]);
    let st = parse_safetensors(&encode_safetensors(&tensors), Path::new("m")).unwrap();
    assert_eq!(
        st.tensors,
        BTreeMap::from([("w".to_string(), t(&[2.0], &[1]))])
    );
}

#[test]
fn encoded_header_is_padded_to_8_bytes() {
    for n in 0..12 {
        let name = "x".repeat(n);
        let bytes = encode_safetensors(&BTreeMap::from([(name, t(&[1.0], &[1]))]));
        let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap());
        assert_eq!(header_len % 8, 0);
        assert_eq!(bytes.len() as u64, 8 + header_len + 4);
    }
}

proptest! {
    #[test]
    fn round_trip_any_tensors(
        shapes in prop::collection::vec(prop::collection::vec(0usize..4, 0..4), 0..5),
        seed in any::<u32>(),
    ) {
        let tensors: BTreeMap<String, Tensor> = shapes
            .iter()
            .enumerate()
            .map(|(k, shape)| {
                let n: usize = shape.iter().product();
                let data: Vec<f32> = (0..n as u32)
                    .map(|i| f32::from_bits(i.wrapping_mul(2_654_435_761) ^ seed.wrapping_add(k as u32)))
                    .collect();
                (format!("layer{k}.weight"), Tensor::from_vec(data, shape).unwrap())
            })
            .collect();
        let st = parse_safetensors(&encode_safetensors(&tensors), Path::new("m")).unwrap();
        prop_assert_eq!(st.tensors.len(), tensors.len());
        for (name, tensor) in &tensors {
            prop_assert_eq!(st.tensors[name].shape(), tensor.shape());
            prop_assert_eq!(bits(&st.tensors[name]), bits(tensor));
        }
    }
}

#[test]
fn accepts_spacing_metadata_unknown_dtypes_and_extra_fields() {
    let header = r#" { "__metadata__" : {"format": "pt"},
        "w": {"data_offsets": [0, 8], "shape": [2], "dtype": "F32", "extra": null},
        "q": {"dtype": "Q4_K", "shape": [3], "data_offsets": [8, 10]} }   "#;
    let data: Vec<u8> = [1.5f32, -2.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .chain([0, 0])
        .collect();
    let st = parse_safetensors(&st_bytes(header, &data), Path::new("x")).unwrap();
    assert_eq!(st.tensors["w"], t(&[1.5, -2.0], &[2]));
    // An unknown dtype cannot have its size checked, but it is listed.
    assert_eq!(st.unsupported["q"], "Q4_K");
    // An empty header object is a valid file with no tensors.
    let empty = parse_safetensors(&st_bytes("{}", &[]), Path::new("x")).unwrap();
    assert!(empty.tensors.is_empty() && empty.unsupported.is_empty());
}

#[test]
fn file_shorter_than_the_length_field() {
    let msg = st_msg(parse_safetensors(b"1234567", Path::new("x")));
    assert_eq!(
        msg,
        "the file is 7 bytes, too short for the 8-byte header length"
    );
}

#[test]
fn header_length_beyond_the_file() {
    let mut bytes = 100u64.to_le_bytes().to_vec();
    bytes.extend_from_slice(b"{}        ");
    let msg = st_msg(parse_safetensors(&bytes, Path::new("x")));
    assert_eq!(
        msg,
        "the header length 100 runs past the end of the file (10 bytes after the length)"
    );
    let mut bytes = u64::MAX.to_le_bytes().to_vec();
    bytes.extend_from_slice(b"{}");
    let msg = st_msg(parse_safetensors(&bytes, Path::new("x")));
    assert_eq!(
        msg,
        "the header length 18446744073709551615 runs past the end of the file (2 bytes after the \
         length)"
    );
}

#[test]
fn invalid_json_names_the_byte() {
    // Byte 22 is the `}` right after the trailing comma.
    let msg = parse_err(r#"{"a": {"dtype": "F32",}}"#, 0);
    assert_eq!(
        msg,
        "invalid JSON header: at byte 22: expected a string key"
    );
    let msg = parse_err(r#"{"a": {"dtype": 'F32'}}"#, 0);
    assert_eq!(
        msg,
        "invalid JSON header: at byte 16: expected a JSON value"
    );
    let msg = parse_err(r#"{"a": 1} {}"#, 0);
    assert_eq!(
        msg,
        "invalid JSON header: at byte 9: unexpected text after the JSON value"
    );
    let msg = parse_err("", 0);
    assert_eq!(
        msg,
        "invalid JSON header: at byte 0: unexpected end of the header"
    );
}

#[test]
fn header_must_be_utf8() {
    let mut bytes = st_bytes(r#"{"ab": 1}"#, &[]);
    bytes[8 + 3] = 0xff;
    let msg = st_msg(parse_safetensors(&bytes, Path::new("x")));
    assert_eq!(msg, "the header is not valid UTF-8 (at header byte 3)");
}

#[test]
fn header_must_be_an_object_of_objects() {
    assert_eq!(parse_err("[]", 0), "the JSON header is not an object");
    assert_eq!(
        parse_err(r#"{"w": 3}"#, 0),
        "tensor `w`: entry is not an object"
    );
}

#[test]
fn missing_fields_name_the_tensor() {
    assert_eq!(
        parse_err(r#"{"w": {"shape": [1], "data_offsets": [0, 4]}}"#, 4),
        "tensor `w`: missing \"dtype\""
    );
    assert_eq!(
        parse_err(r#"{"w": {"dtype": "F32", "data_offsets": [0, 4]}}"#, 4),
        "tensor `w`: missing \"shape\""
    );
    assert_eq!(
        parse_err(r#"{"w": {"dtype": "F32", "shape": [1]}}"#, 4),
        "tensor `w`: missing \"data_offsets\""
    );
}

#[test]
fn malformed_fields_name_the_tensor() {
    let cases = [
        (
            r#"{"w": {"dtype": 5, "shape": [1], "data_offsets": [0, 4]}}"#,
            "tensor `w`: \"dtype\" is not a string",
        ),
        (
            r#"{"w": {"dtype": "F32", "shape": [1.0], "data_offsets": [0, 4]}}"#,
            "tensor `w`: \"shape\" is not an array of non-negative integers",
        ),
        (
            r#"{"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}"#,
            "tensor `w`: \"shape\" is not an array of non-negative integers",
        ),
        (
            r#"{"w": {"dtype": "F32", "shape": 1, "data_offsets": [0, 4]}}"#,
            "tensor `w`: \"shape\" is not an array of non-negative integers",
        ),
        (
            r#"{"w": {"dtype": "F32", "shape": [1], "data_offsets": [4]}}"#,
            "tensor `w`: \"data_offsets\" is not a pair of non-negative integers",
        ),
        (
            r#"{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4, 8]}}"#,
            "tensor `w`: \"data_offsets\" is not a pair of non-negative integers",
        ),
        (
            r#"{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 1e1]}}"#,
            "tensor `w`: \"data_offsets\" is not a pair of non-negative integers",
        ),
    ];
    for (header, expected) in cases {
        assert_eq!(parse_err(header, 4), expected, "{header}");
    }
}

#[test]
fn offsets_out_of_range() {
    assert_eq!(
        parse_err(
            r#"{"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}"#,
            4
        ),
        "tensor `w`: data_offsets [0, 8] are out of range of the 4 data bytes"
    );
    assert_eq!(
        parse_err(
            r#"{"w": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}}"#,
            4
        ),
        "tensor `w`: data_offsets [4, 0] are out of range of the 4 data bytes"
    );
    assert_eq!(
        parse_err(
            r#"{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 99999999999999999999999]}}"#,
            4
        ),
        "tensor `w`: \"data_offsets\" is not a pair of non-negative integers"
    );
}

#[test]
fn offsets_must_match_the_shape() {
    // [2, 3] of F32: 6 × 4 = 24 bytes, but the offsets span 20.
    assert_eq!(
        parse_err(
            r#"{"w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 20]}}"#,
            20
        ),
        "tensor `w`: data_offsets [0, 20] hold 20 bytes but shape [2, 3] of F32 needs 24"
    );
    // A scalar I64 needs 8 bytes.
    assert_eq!(
        parse_err(
            r#"{"n": {"dtype": "I64", "shape": [], "data_offsets": [0, 4]}}"#,
            4
        ),
        "tensor `n`: data_offsets [0, 4] hold 4 bytes but shape [] of I64 needs 8"
    );
    assert_eq!(
        parse_err(
            r#"{"w": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 4]}}"#,
            4
        ),
        "tensor `w`: data_offsets [0, 4] hold 4 bytes but shape [4294967296, 4294967296] of F32 \
         needs more than fit in memory"
    );
}

#[test]
fn overlapping_tensors() {
    let header = r#"{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                     "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}"#;
    assert_eq!(
        parse_err(header, 12),
        "tensors `a` and `b` overlap (data_offsets end at 8 and begin at 4)"
    );
    let same = r#"{"b": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                   "a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}"#;
    assert_eq!(
        parse_err(same, 4),
        "tensors `b` and `a` overlap (data_offsets end at 4 and begin at 0)"
    );
}

#[test]
fn gaps_and_trailing_data() {
    let gap = r#"{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                  "b": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}}"#;
    assert_eq!(
        parse_err(gap, 12),
        "data bytes 4..8 belong to no tensor (before tensor `b`)"
    );
    let trailing = r#"{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}"#;
    assert_eq!(
        parse_err(trailing, 8),
        "data bytes 4..8 belong to no tensor (after the last tensor)"
    );
    assert_eq!(
        parse_err("{}", 3),
        "data bytes 0..3 belong to no tensor (after the last tensor)"
    );
}

#[test]
fn duplicate_names_and_bad_metadata() {
    let dup = r#"{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                  "a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}"#;
    assert_eq!(parse_err(dup, 8), "the header names `a` twice");
    assert_eq!(
        parse_err(r#"{"__metadata__": {"format": "pt", "version": 2}}"#, 0),
        "__metadata__ entry \"version\" is not a string"
    );
    assert_eq!(
        parse_err(r#"{"__metadata__": ["pt"]}"#, 0),
        "__metadata__ is not an object"
    );
}

#[test]
fn errors_name_the_file() {
    let err = parse_safetensors(b"short", Path::new("weights/model.safetensors")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "weights/model.safetensors: invalid .safetensors file: the file is 5 bytes, too short \
         for the 8-byte header length"
    );
}

#[test]
fn missing_file_is_an_io_error() {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("io_safetensors-absent.safetensors");
    match read_safetensors(&path) {
        Err(RuntimeError::Io { path: p, source }) => {
            assert_eq!(p, path);
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("expected RuntimeError::Io, got {other:?}"),
    }
}
