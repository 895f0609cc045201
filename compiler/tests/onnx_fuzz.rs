//! A byte-mutation fuzzer for the ONNX reader and importer that runs on stable Rust (`cargo fuzz`
//! needs nightly).
//!
//! Seeds are the golden ONNX models; each iteration picks one and mutates it in one of two ways:
//! - bytes: bit flips, byte overwrites with boundary values, truncation, insertion, deletion,
//!   splices from another seed, and protobuf varint edits that grow lengths and counts (mostly
//!   exercising the protobuf decoder and the reader);
//! - structure: the seed decoded to a `ModelProto`, one or more fields changed (attribute values,
//!   dims, element types, op types, operand names, tensor data lengths, nodes removed) and
//!   encoded again, so that the result is valid protobuf and reaches deep into the importer.
//!
//! The result is imported with `load_onnx_bytes` under `catch_unwind`. An error is fine; a panic
//! fails the run, and the input that caused it is saved to `tests/fixtures/onnx/fuzz_regressions/`
//! (the directory the regression test replays).
//!
//! - `regressions_and_quick_mutations` (always run): every saved regression input, then a few
//!   thousand mutations from a fixed seed.
//! - `fuzz_for_a_while` (ignored): mutates for `KILN_FUZZ_SECS` seconds (default 60) from seed
//!   `KILN_FUZZ_SEED` (default: the clock), e.g.
//!   `KILN_FUZZ_SECS=600 cargo test --release -p kiln-compiler --test onnx_fuzz -- --ignored --nocapture`.

use kiln::frontend::onnx::load_onnx_bytes;
use kiln::frontend::onnx::proto::{tensor_shape_proto::dimension, type_proto, ModelProto};
use kiln::frontend::onnx::SUPPORTED_OPS;
use prost::Message;
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn regressions_dir() -> PathBuf {
    fixtures().join("onnx/fuzz_regressions")
}

/// The directory external data is resolved against (that of the external-data seed).
fn external_dir() -> PathBuf {
    fixtures().join("onnx/external_data")
}

/// Every `.onnx` file of the golden fixtures, sorted by path (so a seed means the same run).
fn seeds() -> Vec<Vec<u8>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(fixtures().join("golden"))
        .expect("golden fixtures")
        .flat_map(|d| {
            std::fs::read_dir(d.expect("entry").path())
                .into_iter()
                .flatten()
        })
        .map(|f| f.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "onnx"))
        .collect();
    paths.sort();
    // A model whose initializers live in an external file (resolved against `external_dir()`).
    paths.push(external_dir().join("model.onnx"));
    paths
        .iter()
        .map(|p| std::fs::read(p).expect("read seed"))
        .collect()
}

/// SplitMix64: small, seeded, good enough to choose mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Encodes `v` as a protobuf varint.
fn varint(mut v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// Replaces the varint starting at `at` (if one does) with `v`; returns whether it did.
fn replace_varint(data: &mut Vec<u8>, at: usize, v: u64) -> bool {
    let len = data[at..].iter().take(10).position(|b| b & 0x80 == 0);
    let Some(len) = len else { return false };
    data.splice(at..at + len + 1, varint(v));
    true
}

/// Values that stress sizes, signs and counts.
const INTERESTING: &[u64] = &[
    0,
    1,
    2,
    3,
    4,
    7,
    8,
    0x7f,
    0x80,
    0xff,
    0xffff,
    0x7fff_ffff,
    0xffff_ffff,
    1 << 28,
    1 << 31,
    1 << 40,
    i64::MAX as u64,
    u64::MAX,
    u64::MAX - 1,
];

/// Applies one to four random mutations to `data`.
fn mutate(data: &mut Vec<u8>, seeds: &[Vec<u8>], rng: &mut Rng) {
    for _ in 0..1 + rng.below(4) {
        if data.is_empty() {
            data.push(rng.next() as u8);
            continue;
        }
        let at = rng.below(data.len());
        match rng.below(9) {
            0 => data[at] ^= 1 << rng.below(8),
            1 => data[at] = [0x00, 0x01, 0x7f, 0x80, 0xff][rng.below(5)],
            2 => data.truncate(at),
            3 => {
                let n = 1 + rng.below(16);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                data.splice(at..at, bytes);
            }
            4 => {
                let end = (at + 1 + rng.below(64)).min(data.len());
                data.drain(at..end);
            }
            5 => {
                // Splice a piece of another seed in.
                let other = &seeds[rng.below(seeds.len())];
                if !other.is_empty() {
                    let from = rng.below(other.len());
                    let to = (from + 1 + rng.below(256)).min(other.len());
                    let end = (at + rng.below(256)).min(data.len());
                    data.splice(at..end, other[from..to].iter().copied());
                }
            }
            6 | 7 => {
                // Rewrite a varint (a length, count, dim, attribute or tag) to a boundary value.
                let v = INTERESTING[rng.below(INTERESTING.len())];
                replace_varint(data, at, v);
            }
            _ => {
                // Nudge a varint by a small amount.
                let mut v = 0u64;
                for (i, b) in data[at..].iter().take(10).enumerate() {
                    v |= u64::from(b & 0x7f) << (7 * i);
                    if b & 0x80 == 0 {
                        break;
                    }
                }
                let delta = rng.below(5) as u64;
                let v = if rng.below(2) == 0 {
                    v.wrapping_add(delta)
                } else {
                    v.wrapping_sub(delta)
                };
                replace_varint(data, at, v);
            }
        }
    }
}

/// A boundary value for an `i64` field.
fn interesting_i64(rng: &mut Rng) -> i64 {
    let v = INTERESTING[rng.below(INTERESTING.len())] as i64;
    match rng.below(3) {
        0 => v,
        1 => v.wrapping_neg(),
        _ => rng.below(8) as i64 - 2,
    }
}

/// Changes one to three fields of a decoded model (or returns `false` if it has no graph).
fn mutate_structure(m: &mut ModelProto, rng: &mut Rng) -> bool {
    let Some(g) = m.graph.as_mut() else {
        return false;
    };
    for _ in 0..1 + rng.below(3) {
        let n_nodes = g.node.len();
        match rng.below(12) {
            0 | 1 if n_nodes > 0 => {
                // An attribute's value.
                let node = &mut g.node[rng.below(n_nodes)];
                if node.attribute.is_empty() {
                    continue;
                }
                let k = rng.below(node.attribute.len());
                let a = &mut node.attribute[k];
                match rng.below(5) {
                    0 => a.i = Some(interesting_i64(rng)),
                    1 if !a.ints.is_empty() => {
                        let j = rng.below(a.ints.len());
                        a.ints[j] = interesting_i64(rng);
                    }
                    2 => {
                        let len = rng.below(6);
                        a.ints = (0..len).map(|_| interesting_i64(rng)).collect();
                    }
                    3 => a.f = Some([0.0, -1.0, f32::NAN, f32::INFINITY, 1e30][rng.below(5)]),
                    _ => {
                        a.s = Some(
                            [
                                "SAME_UPPER",
                                "SAME_LOWER",
                                "VALID",
                                "NOTSET",
                                "tanh",
                                "reflect",
                                "",
                            ][rng.below(7)]
                            .as_bytes()
                            .to_vec(),
                        )
                    }
                }
            }
            2 if n_nodes > 0 => {
                // Drop an attribute.
                let node = &mut g.node[rng.below(n_nodes)];
                if !node.attribute.is_empty() {
                    let k = rng.below(node.attribute.len());
                    node.attribute.remove(k);
                }
            }
            3 if !g.initializer.is_empty() => {
                // An initializer's dims.
                let k = rng.below(g.initializer.len());
                let t = &mut g.initializer[k];
                if t.dims.is_empty() || rng.below(4) == 0 {
                    t.dims.push(interesting_i64(rng));
                } else {
                    let j = rng.below(t.dims.len());
                    t.dims[j] = interesting_i64(rng);
                }
            }
            4 if !g.initializer.is_empty() => {
                // An initializer's element type or data.
                let k = rng.below(g.initializer.len());
                let t = &mut g.initializer[k];
                match rng.below(4) {
                    0 => t.data_type = Some(rng.below(17) as i32),
                    1 if !t.external_data.is_empty() => {
                        // An external data entry: offset, length or location.
                        let j = rng.below(t.external_data.len());
                        let value = match rng.below(3) {
                            0 => interesting_i64(rng).to_string(),
                            1 => ["", "missing.bin", "..", "/", "model.onnx"][rng.below(5)].into(),
                            _ => format!("{}", rng.below(600)),
                        };
                        t.external_data[j].value = Some(value);
                    }
                    1 => {
                        if let Some(raw) = t.raw_data.as_mut() {
                            let keep = rng.below(raw.len() + 1);
                            raw.truncate(keep);
                        }
                    }
                    _ => t.data_location = Some(1),
                }
            }
            5 if !g.input.is_empty() => {
                // A graph input's dim.
                let k = rng.below(g.input.len());
                if let Some(type_proto::Value::TensorType(t)) =
                    g.input[k].r#type.as_mut().and_then(|t| t.value.as_mut())
                {
                    if let Some(shape) = t.shape.as_mut() {
                        if !shape.dim.is_empty() {
                            let j = rng.below(shape.dim.len());
                            shape.dim[j].value = Some(if rng.below(3) == 0 {
                                dimension::Value::DimParam("N".into())
                            } else {
                                dimension::Value::DimValue(interesting_i64(rng))
                            });
                        } else {
                            shape.dim.push(Default::default());
                        }
                    }
                    if rng.below(8) == 0 {
                        t.elem_type = Some(rng.below(17) as i32);
                    }
                }
            }
            6 if n_nodes > 0 => {
                // Another op type.
                let node = &mut g.node[rng.below(n_nodes)];
                node.op_type = Some(SUPPORTED_OPS[rng.below(SUPPORTED_OPS.len())].to_string());
            }
            7 if n_nodes > 1 => {
                // An operand read from another value (possibly a later one: a cycle).
                let src = rng.below(n_nodes);
                let dst = rng.below(n_nodes);
                let value = g.node[src].output.first().cloned().unwrap_or_default();
                let node = &mut g.node[dst];
                if node.input.is_empty() || rng.below(4) == 0 {
                    node.input.push(value);
                } else {
                    let j = rng.below(node.input.len());
                    node.input[j] = value;
                }
            }
            8 if n_nodes > 0 => {
                // A node removed, or an operand or result dropped.
                let k = rng.below(n_nodes);
                match rng.below(3) {
                    0 => {
                        g.node.remove(k);
                    }
                    1 => {
                        g.node[k].input.pop();
                    }
                    _ => g.node[k].output.push("extra".into()),
                }
            }
            9 => {
                m.opset_import
                    .iter_mut()
                    .for_each(|o| o.version = Some(12 + rng.below(11) as i64));
                return true;
            }
            10 if !g.initializer.is_empty() => {
                // An initializer removed (its readers dangle) or listed as an input too.
                let k = rng.below(g.initializer.len());
                if rng.below(2) == 0 {
                    g.initializer.remove(k);
                } else if let Some(first) = g.input.first().cloned() {
                    let mut vi = first;
                    vi.name = g.initializer[k].name.clone();
                    g.input.push(vi);
                }
            }
            _ if n_nodes > 0 => {
                // A Constant's tensor dims or data.
                let node = &mut g.node[rng.below(n_nodes)];
                if let Some(t) = node.attribute.iter_mut().find_map(|a| a.t.as_mut()) {
                    if rng.below(2) == 0 {
                        t.dims = (0..rng.below(4)).map(|_| interesting_i64(rng)).collect();
                    } else {
                        t.int64_data = (0..rng.below(5)).map(|_| interesting_i64(rng)).collect();
                        t.raw_data = None;
                    }
                }
            }
            _ => {}
        }
    }
    true
}

/// What an import ended with: `ok`, or the error's variant (`Onnx(Malformed`, `Shape`, …).
fn outcome(r: &kiln::Result<kiln::Graph>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(e) => {
            let d = format!("{e:?}");
            let end = d.find(['"', '{', ' ', ',']).unwrap_or(d.len());
            d[..end].trim_end_matches('(').to_string()
        }
    }
}

/// Imports `bytes` (without input shapes, then with `x` as 2x3x32x32 so that models with a
/// symbolic batch import fully); the outcome of the first import, or `Err` with the panic message
/// if the importer panicked.
fn import_catching_panics(bytes: &[u8]) -> Result<String, String> {
    let shapes: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    catching(|| {
        let dir = external_dir();
        let first = outcome(&load_onnx_bytes(bytes, Some(&dir), &shapes));
        let batch = BTreeMap::from([("x".to_string(), vec![2, 3, 32, 32])]);
        let _ = load_onnx_bytes(bytes, Some(&dir), &batch);
        first
    })
}

/// Runs `f`; `Err` with the panic's message if it panicked.
fn catching<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "panic with a non-string payload".into())
    })
}

/// Runs `f` with the panic hook silenced (the default one would print every caught panic's
/// message); a lock keeps tests running in parallel from swapping the hook at the same time.
fn quietly<T>(f: impl FnOnce() -> T) -> T {
    static HOOK: Mutex<()> = Mutex::new(());
    let _guard = HOOK.lock().unwrap_or_else(|e| e.into_inner());
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = f();
    std::panic::set_hook(hook);
    result
}

/// Saves a panicking input as a regression and returns its path.
fn save_regression(bytes: &[u8]) -> PathBuf {
    let dir = regressions_dir();
    std::fs::create_dir_all(&dir).expect("create regressions dir");
    // FNV-1a of the bytes names the file, so the same input is saved once.
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let path = dir.join(format!("crash-{hash:016x}.onnx"));
    std::fs::write(&path, bytes).expect("write regression");
    path
}

/// Statistics of one fuzzing run.
struct Report {
    iterations: u64,
    panics: Vec<(PathBuf, String)>,
    /// How many imports ended with each outcome.
    outcomes: BTreeMap<String, u64>,
}

/// Mutates seeds until `deadline` or `max_iterations`; stops early after 20 panics.
fn fuzz(seed: u64, deadline: Instant, max_iterations: u64) -> Report {
    quietly(|| fuzz_quietly(seed, deadline, max_iterations))
}

fn fuzz_quietly(seed: u64, deadline: Instant, max_iterations: u64) -> Report {
    let seeds = seeds();
    let mut rng = Rng(seed);
    let mut report = Report {
        iterations: 0,
        panics: Vec::new(),
        outcomes: BTreeMap::new(),
    };
    while report.iterations < max_iterations
        && Instant::now() < deadline
        && report.panics.len() < 20
    {
        let seed = &seeds[rng.below(seeds.len())];
        let structured = rng.below(2) == 0;
        let mut model = ModelProto::decode(seed.as_slice())
            .ok()
            .filter(|_| structured);
        let changed = model
            .as_mut()
            .is_some_and(|m| mutate_structure(m, &mut rng));
        let data = match model {
            Some(m) if changed => m.encode_to_vec(),
            _ => {
                let mut data = seed.clone();
                mutate(&mut data, &seeds, &mut rng);
                data
            }
        };
        match import_catching_panics(&data) {
            Ok(o) => *report.outcomes.entry(o).or_default() += 1,
            Err(msg) => report.panics.push((save_regression(&data), msg)),
        }
        report.iterations += 1;
    }
    report
}

fn assert_no_panics(report: &Report) {
    let list: Vec<String> = report
        .panics
        .iter()
        .map(|(p, m)| format!("{}: {m}", p.display()))
        .collect();
    assert!(
        list.is_empty(),
        "{} panic(s) (inputs saved):\n{}",
        list.len(),
        list.join("\n")
    );
}

#[test]
fn regressions_and_quick_mutations() {
    let mut replayed = 0;
    if let Ok(entries) = std::fs::read_dir(regressions_dir()) {
        let mut paths: Vec<PathBuf> = entries.map(|e| e.expect("entry").path()).collect();
        paths.sort();
        for path in paths
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "onnx"))
        {
            let bytes = std::fs::read(path).expect("read regression");
            if let Err(msg) = import_catching_panics(&bytes) {
                panic!("{} panics again: {msg}", path.display());
            }
            replayed += 1;
        }
    }
    let report = fuzz(0x5eed, Instant::now() + Duration::from_secs(120), 3000);
    println!(
        "replayed {replayed} regression input(s); {} quick mutations: {:?}",
        report.iterations, report.outcomes
    );
    assert_no_panics(&report);
}

#[test]
#[ignore = "long-running; set KILN_FUZZ_SECS"]
fn fuzz_for_a_while() {
    let secs: u64 = std::env::var("KILN_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let seed: u64 = std::env::var("KILN_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    let start = Instant::now();
    let report = fuzz(seed, start + Duration::from_secs(secs), u64::MAX);
    let elapsed = start.elapsed().as_secs_f64();
    println!(
        "onnx fuzz: seed {seed}, {} iterations in {elapsed:.1} s ({:.0}/s), {} panic(s)",
        report.iterations,
        report.iterations as f64 / elapsed,
        report.panics.len()
    );
    for (o, count) in &report.outcomes {
        println!("  {count:>9}  {o}");
    }
    assert_no_panics(&report);
}

#[test]
fn the_harness_catches_and_reports_panics() {
    // A panic must come back as an error with its message (else the fuzzer would be blind).
    let index: Vec<u8> = Vec::new();
    let (caught, caught_index) = quietly(|| {
        (
            catching(|| -> u8 { panic!("boom {}", 7) }),
            catching(|| index[3]),
        )
    });
    assert_eq!(caught, Err("boom 7".to_string()));
    assert!(caught_index.is_err_and(|m| m.contains("index out of bounds")));
    assert_eq!(catching(|| 5), Ok(5));
}
