//! `.npy` reading and writing: NumPy-written fixtures (see `fixtures/make_fixtures.py`), byte-exact
//! encoding, round trips, atomic writes, and one test per malformed or unsupported input.

use kiln_runtime::io::npy::{encode_npy, parse_npy, read_npy, write_npy};
use kiln_runtime::{RuntimeError, Tensor};
use proptest::prelude::*;
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn fixture_bytes(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).unwrap()
}

/// A fresh, empty scratch folder for one test.
fn scratch_dir(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("io_npy-{test}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn bits(t: &Tensor) -> Vec<u32> {
    t.data().iter().map(|v| v.to_bits()).collect()
}

/// The array every `v*.npy` fixture holds: `np.arange(6).reshape(2, 3) / 4 - 0.5` in float32.
fn fixture_array() -> Tensor {
    // i / 4 - 0.5 for i = 0..6
    Tensor::from_vec(vec![-0.5, -0.25, 0.0, 0.25, 0.5, 0.75], &[2, 3]).unwrap()
}

/// The message of a `RuntimeError::Npy` (panics on any other result: this is a test helper).
fn npy_msg(result: kiln_runtime::Result<Tensor>) -> String {
    match result {
        Err(RuntimeError::Npy { msg, .. }) => msg,
        other => panic!("expected RuntimeError::Npy, got {other:?}"),
    }
}

/// A `.npy` file with this version and header text (length field filled in) followed by `data`.
fn npy_bytes(version: (u8, u8), header: &str, data: &[u8]) -> Vec<u8> {
    let mut out = b"\x93NUMPY".to_vec();
    out.extend_from_slice(&[version.0, version.1]);
    if version.0 == 1 {
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    }
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

const F4_2X3: &str = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n";

#[test]
fn reads_numpy_files_of_every_version() {
    for name in ["v1.npy", "v2.npy", "v3.npy"] {
        let t = read_npy(&fixture(name)).unwrap();
        assert_eq!(t, fixture_array(), "{name}");
    }
}

#[test]
fn reads_numpy_scalar_and_empty() {
    let scalar = read_npy(&fixture("scalar.npy")).unwrap();
    assert_eq!(scalar.shape(), &[] as &[usize]);
    assert_eq!(scalar.data(), &[2.5]);
    let empty = read_npy(&fixture("empty.npy")).unwrap();
    assert_eq!(empty.shape(), &[0, 3]);
    assert!(empty.data().is_empty());
}

#[test]
fn encodes_the_bytes_numpy_writes() {
    assert_eq!(encode_npy(&fixture_array()), fixture_bytes("v1.npy"));
    let scalar = Tensor::from_vec(vec![2.5], &[]).unwrap();
    assert_eq!(encode_npy(&scalar), fixture_bytes("scalar.npy"));
    assert_eq!(
        encode_npy(&Tensor::zeros(&[0, 3]).unwrap()),
        fixture_bytes("empty.npy")
    );
}

#[test]
fn encoded_data_is_64_byte_aligned_after_a_newline() {
    for rank in 0..40 {
        // The first dimension's digits change NumPy's spare padding; the others only the length.
        let shape: Vec<usize> = (0..rank)
            .map(|i| if i == 0 { rank * 37 % 1000 } else { 1 })
            .collect();
        let t = Tensor::zeros(&shape).unwrap();
        let bytes = encode_npy(&t);
        let data_start = bytes.len() - 4 * t.numel();
        assert_eq!(data_start % 64, 0, "rank {rank}");
        assert_eq!(bytes[data_start - 1], b'\n', "rank {rank}");
        assert_eq!(&bytes[6..8], &[1, 0], "version 1.0");
        // The length field counts everything between it and the data.
        assert_eq!(
            usize::from(u16::from_le_bytes([bytes[8], bytes[9]])),
            data_start - 10
        );
    }
}

#[test]
fn round_trip_keeps_every_bit() {
    let specials = [
        0.0,
        -0.0,
        f32::NAN,
        -f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::MIN_POSITIVE / 2.0,
        f32::MAX,
    ];
    let t = Tensor::from_vec(specials.to_vec(), &[2, 4]).unwrap();
    let back = parse_npy(&encode_npy(&t), Path::new("mem.npy")).unwrap();
    assert_eq!(back.shape(), t.shape());
    assert_eq!(bits(&back), bits(&t));
}

proptest! {
    #[test]
    fn round_trip_any_shape(
        shape in prop::collection::vec(0usize..5, 0..5),
        seed in any::<u32>(),
    ) {
        let n: usize = shape.iter().product();
        // Arbitrary bit patterns, NaN payloads included.
        let data: Vec<f32> = (0..n as u32)
            .map(|i| f32::from_bits(i.wrapping_mul(2_654_435_761).wrapping_add(seed)))
            .collect();
        let t = Tensor::from_vec(data, &shape).unwrap();
        let back = parse_npy(&encode_npy(&t), Path::new("mem.npy")).unwrap();
        prop_assert_eq!(back.shape(), t.shape());
        prop_assert_eq!(bits(&back), bits(&t));
    }
}

#[test]
fn accepts_header_variations() {
    // Double quotes, no trailing comma, other key order, extra spaces, Python 2's `L` suffix.
    let header = "{\"shape\" : (2L,3L) ,\"fortran_order\":False, 'descr':'<f4'}";
    let data: Vec<u8> = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let t = parse_npy(&npy_bytes((1, 0), header, &data), Path::new("x.npy")).unwrap();
    assert_eq!(t.shape(), &[2, 3]);
    assert_eq!(t.data(), &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    // Version 3.0 allows UTF-8 in the header (here in a string the header does not use).
    let v3 = npy_bytes((3, 0), F4_2X3, &data);
    assert_eq!(parse_npy(&v3, Path::new("x.npy")).unwrap().shape(), &[2, 3]);
}

#[test]
fn other_dtypes_are_named() {
    for (name, dtype) in [
        ("f64.npy", "'<f8'"),
        ("big_endian.npy", "'>f4'"),
        ("int64.npy", "'<i8'"),
    ] {
        let msg = npy_msg(read_npy(&fixture(name)));
        assert_eq!(
            msg,
            format!("dtype {dtype} is not supported; only float32 ('<f4')"),
            "{name}"
        );
    }
    let structured = "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }";
    let msg = npy_msg(parse_npy(
        &npy_bytes((1, 0), structured, &[0; 4]),
        Path::new("s.npy"),
    ));
    assert_eq!(
        msg,
        "dtype [('a', '<f4')] is not supported; only float32 ('<f4')"
    );
}

#[test]
fn fortran_order_is_rejected() {
    let msg = npy_msg(read_npy(&fixture("fortran.npy")));
    assert!(
        msg.starts_with("Fortran-order (column-major) arrays are not supported"),
        "{msg}"
    );
}

#[test]
fn bad_magic() {
    let msg = npy_msg(parse_npy(b"PK\x03\x04 not an npy file", Path::new("x.npy")));
    assert_eq!(
        msg,
        "bad magic: expected b\"\\x93NUMPY\", found b\"PK\\x03\\x04 n\""
    );
    let msg = npy_msg(parse_npy(b"", Path::new("x.npy")));
    assert_eq!(msg, "bad magic: expected b\"\\x93NUMPY\", found b\"\"");
}

#[test]
fn unsupported_version() {
    let mut bytes = fixture_bytes("v1.npy");
    bytes[6] = 4;
    let msg = npy_msg(parse_npy(&bytes, Path::new("x.npy")));
    assert_eq!(
        msg,
        "unsupported format version 4.0 (supported: 1.0, 2.0, 3.0)"
    );
    bytes[6] = 1;
    bytes[7] = 1;
    let msg = npy_msg(parse_npy(&bytes, Path::new("x.npy")));
    assert_eq!(
        msg,
        "unsupported format version 1.1 (supported: 1.0, 2.0, 3.0)"
    );
}

#[test]
fn truncated_header() {
    let bytes = fixture_bytes("v1.npy");
    let msg = npy_msg(parse_npy(&bytes[..7], Path::new("x.npy")));
    assert_eq!(
        msg,
        "truncated header: the file is 7 bytes, too short for the version bytes"
    );
    let msg = npy_msg(parse_npy(&bytes[..9], Path::new("x.npy")));
    assert_eq!(
        msg,
        "truncated header: the file is 9 bytes, too short for the header length"
    );
    // The fixture's header is 118 bytes (64 - 10 + 64: data at byte 128), so 100 bytes cut it.
    let msg = npy_msg(parse_npy(&bytes[..100], Path::new("x.npy")));
    assert_eq!(
        msg,
        "truncated header: the header needs 128 bytes but the file is only 100 bytes"
    );
    let v2 = fixture_bytes("v2.npy");
    let msg = npy_msg(parse_npy(&v2[..11], Path::new("x.npy")));
    assert_eq!(
        msg,
        "truncated header: the file is 11 bytes, too short for the header length"
    );
}

#[test]
fn malformed_headers() {
    let cases = [
        ("[1, 2]", "header is not a dict: [1, 2]"),
        (
            "{'descr': '<f4', 'fortran_order': False}",
            "header has no 'shape' key",
        ),
        (
            "{'fortran_order': False, 'shape': ()}",
            "header has no 'descr' key",
        ),
        (
            "{'descr': '<f4', 'shape': (), 'fortran_order': False, 'extra': 1}",
            "header has an unexpected key 'extra'",
        ),
        (
            "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': ()}",
            "header has the key 'descr' twice",
        ),
        (
            "{'descr': '<f4', 'fortran_order': 0, 'shape': ()}",
            "'fortran_order' must be True or False, got 0",
        ),
        (
            "{'descr': '<f4', 'fortran_order': False, 'shape': [2, 3]}",
            "'shape' must be a tuple of non-negative integers, got [2, 3]",
        ),
        (
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2, -3)}",
            "'shape' must be a tuple of non-negative integers, got (2, -3)",
        ),
        (
            "{'descr': '<f4' 'fortran_order': False}",
            "cannot parse the header at character 16: expected ',' or '}'",
        ),
        (
            "{'descr': '<f4, 'shape': ()}",
            "cannot parse the header at character 17: expected ',' or '}'",
        ),
        (
            "{'descr': '<f4', 'fortran_order': false, 'shape': ()}",
            "cannot parse the header at character 34: unexpected name `false`",
        ),
        (
            "{'descr': '<f4', 'fortran_order': False, 'shape': (), } x",
            "cannot parse the header at character 56: unexpected text after the header dict",
        ),
        (
            "{'descr': '<f4",
            "cannot parse the header at character 14: unterminated string",
        ),
        (
            "",
            "cannot parse the header at character 0: unexpected end of the header",
        ),
    ];
    for (header, expected) in cases {
        let msg = npy_msg(parse_npy(
            &npy_bytes((1, 0), header, &[]),
            Path::new("x.npy"),
        ));
        assert_eq!(msg, expected, "header {header:?}");
    }
}

#[test]
fn invalid_utf8_in_a_version_3_header() {
    let mut bytes = npy_bytes((3, 0), F4_2X3, &[0; 24]);
    bytes[12 + 3] = 0xff;
    let msg = npy_msg(parse_npy(&bytes, Path::new("x.npy")));
    assert_eq!(msg, "header is not valid UTF-8 (at header byte 3)");
    // Versions 1.0 and 2.0 are Latin-1, where byte 0xff is `ÿ`: the header parses, with a wrong key.
    bytes[6] = 2;
    let msg = npy_msg(parse_npy(&bytes, Path::new("x.npy")));
    assert_eq!(msg, "header has an unexpected key 'd\u{ff}scr'");
}

#[test]
fn short_data() {
    let bytes = fixture_bytes("v1.npy");
    let msg = npy_msg(parse_npy(&bytes[..bytes.len() - 4], Path::new("x.npy")));
    // shape (2, 3): 6 floats × 4 bytes = 24 bytes; the file holds 20.
    assert_eq!(
        msg,
        "data is too short: shape (2, 3) of float32 needs 24 bytes, got 20"
    );
    let huge = "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 2)}";
    let msg = npy_msg(parse_npy(&npy_bytes((1, 0), huge, &[]), Path::new("x.npy")));
    assert_eq!(msg, "shape (4294967296, 4294967296, 2) is too large");
}

#[test]
fn trailing_bytes() {
    let mut bytes = fixture_bytes("v1.npy");
    bytes.extend_from_slice(&[0, 0, 0]);
    let msg = npy_msg(parse_npy(&bytes, Path::new("x.npy")));
    assert_eq!(
        msg,
        "3 trailing bytes after the 24 bytes of data for shape (2, 3)"
    );
}

#[test]
fn errors_name_the_file() {
    let err = parse_npy(b"nope", Path::new("dir/input.npy")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "dir/input.npy: invalid .npy file: bad magic: expected b\"\\x93NUMPY\", found b\"nope\""
    );
}

#[test]
fn missing_file_is_an_io_error() {
    let path = scratch_dir("missing").join("absent.npy");
    match read_npy(&path) {
        Err(RuntimeError::Io { path: p, source }) => {
            assert_eq!(p, path);
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("expected RuntimeError::Io, got {other:?}"),
    }
}

#[test]
fn write_then_read() {
    let dir = scratch_dir("write");
    let path = dir.join("x.npy");
    write_npy(&path, &fixture_array()).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), fixture_bytes("v1.npy"));
    // Overwriting replaces the file whole.
    let other = Tensor::full(&[5], 1.5).unwrap();
    write_npy(&path, &other).unwrap();
    assert_eq!(read_npy(&path).unwrap(), other);
    assert_eq!(
        file_names(&dir),
        vec!["x.npy".to_string()],
        "no temporary file is left"
    );
}

#[test]
fn failed_write_leaves_nothing_behind() {
    let dir = scratch_dir("failed_write");
    // The target is a non-empty folder, so the final rename fails after the data was written.
    let target = dir.join("taken.npy");
    std::fs::create_dir(&target).unwrap();
    std::fs::write(target.join("keep"), b"x").unwrap();
    match write_npy(&target, &fixture_array()) {
        Err(RuntimeError::Io { path, .. }) => assert_eq!(path, target),
        other => panic!("expected RuntimeError::Io, got {other:?}"),
    }
    assert_eq!(file_names(&dir), vec!["taken.npy".to_string()]);
    // A missing folder: nothing can be created at all.
    let nowhere = dir.join("no/such/folder/x.npy");
    match write_npy(&nowhere, &fixture_array()) {
        Err(RuntimeError::Io { path, source }) => {
            assert_eq!(path, nowhere);
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("expected RuntimeError::Io, got {other:?}"),
    }
}
