//! The examples print what the seed tutorial prints (its outputs are quoted in
//! `shared/seed/torch_nn_relu_tutorial.txt`). `cargo test` builds the examples next to this test's
//! binary; this runs them and checks their output.

use std::path::PathBuf;
use std::process::Command;

/// Runs the example `name` (built by `cargo test` into `target/<profile>/examples/`).
fn run_example(name: &str) -> String {
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/<test> → target/<profile>/examples/<name>
    let dir: PathBuf = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>")
        .join("examples");
    let out = Command::new(dir.join(name)).output().unwrap_or_else(|e| {
        panic!(
            "running example {name} from {}: {e} (plain `cargo test` builds the examples; \
                 with a --test filter, run `cargo build --examples` first)",
            dir.display()
        )
    });
    assert!(
        out.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn relu_basic_prints_the_tutorials_tensors() {
    // The tutorial's printed output, example 1.
    assert_eq!(
        run_example("relu_basic"),
        "Input:\ntensor([[-1.,  2., -3.],\n        [ 4., -5.,  6.]])\n\
         Output:\ntensor([[0., 2., 0.],\n        [4., 0., 6.]])\n"
    );
}

#[test]
fn relu_inplace_modifies_the_same_storage() {
    let out = run_example("relu_inplace");
    assert!(
        out.starts_with("Modified the input tensor in place: True\n"),
        "{out}"
    );
    // After an in-place ReLU no element is negative; the tensor prints in PyTorch's 4-decimal form.
    assert!(
        out.contains("tensor([[") && !out.contains("-0.") && !out.contains(", -"),
        "{out}"
    );
}

#[test]
fn simple_cnn_prints_the_structure_and_shapes() {
    let out = run_example("simple_cnn");
    // The tutorial's printed output, example 3 (PyTorch prints the module over several lines).
    let structure = "SimpleCNN(
  (conv1): Conv2d(3, 32, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))
  (relu1): ReLU()
  (conv2): Conv2d(32, 64, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))
  (relu2): ReLU()
  (pool): MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)
)";
    assert!(out.contains(structure), "{out}");
    assert!(
        out.contains("Input shape: torch.Size([1, 3, 32, 32])"),
        "{out}"
    );
    assert!(
        out.contains("Output shape: torch.Size([1, 64, 8, 8])"),
        "{out}"
    );
    assert!(
        out.contains("JIT output equals the interpreter's: True"),
        "{out}"
    );
}

#[test]
fn functional_relu_and_relu_agree() {
    let out = run_example("functional_relu");
    assert!(out.contains("relu and relu_ agree: True"), "{out}");
}
