//! The memory budget: one limit (`--memory-limit BYTES`, `Options::memory_limit`) on what a model
//! can make Kiln allocate, checked at every stage before the memory is taken.
//!
//! | stage | what is counted |
//! |---|---|
//! | `onnx import` | the model file, every initializer, every constant folded at import, parameters made from them |
//! | `weights` | the `.safetensors` file's tensors |
//! | `interpreter` | the arena, the parameters, and the largest step's operand copies and result |
//! | `jit` | the arena with the JIT's scratch, the packed weights, and the generated code |
//! | `input` | the inputs (from each `.npy` header, before its data is read) with the model's own run memory |
//!
//! A stage that would go past the limit is a [`BudgetError`] naming the stage, what needed the
//! memory and how many bytes, and nothing of it is allocated. Large allocations are also reserved
//! fallibly (`try_reserve`), so an allocation the system refuses is an error too, not an abort.
//!
//! ```
//! use kiln_runtime::budget::Budget;
//! let mut b = Budget::new("onnx import", 1000);
//! b.charge(600, || "initializer `w`".into()).unwrap();
//! let e = b.charge(600, || "initializer `v`".into()).unwrap_err();
//! assert_eq!(
//!     e.to_string(),
//!     "onnx import: initializer `v` needs 600 bytes (1200 in all), more than the memory limit of 1000 bytes (--memory-limit)"
//! );
//! ```

/// The default limit: 4 GiB.
pub const DEFAULT_MEMORY_LIMIT: u64 = 4 << 30;

/// A stage would need more memory than the limit; nothing was allocated for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{stage}: {what} needs {needed} bytes{}, more than the memory limit of {limit} bytes (--memory-limit)", total.map(|t| format!(" ({t} in all)")).unwrap_or_default())]
pub struct BudgetError {
    /// The stage (`onnx import`, `weights`, `interpreter`, `jit`, `input`).
    pub stage: &'static str,
    /// What needed the memory.
    pub what: String,
    /// Bytes it needed.
    pub needed: u64,
    /// The stage's running total with it, when other allocations came before.
    pub total: Option<u64>,
    /// The limit.
    pub limit: u64,
}

/// A running total of the bytes one stage holds, against a limit.
#[derive(Debug, Clone)]
pub struct Budget {
    stage: &'static str,
    limit: u64,
    used: u64,
}

impl Budget {
    /// An empty budget for `stage` with `limit` bytes.
    pub fn new(stage: &'static str, limit: u64) -> Budget {
        Budget {
            stage,
            limit,
            used: 0,
        }
    }

    /// Bytes charged so far.
    pub fn used(&self) -> u64 {
        self.used
    }

    /// The limit.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Adds `bytes` (for what `what` names) to the total, or refuses them when the total would
    /// pass the limit (the total is then unchanged).
    pub fn charge(&mut self, bytes: u64, what: impl FnOnce() -> String) -> Result<(), BudgetError> {
        self.ensure_room(bytes, what)?;
        self.used += bytes;
        Ok(())
    }

    /// Checks that `bytes` more would fit, without charging them (for an allocation that is
    /// charged once made).
    pub fn ensure_room(
        &self,
        bytes: u64,
        what: impl FnOnce() -> String,
    ) -> Result<(), BudgetError> {
        let total = self.used.saturating_add(bytes);
        if total > self.limit {
            return Err(BudgetError {
                stage: self.stage,
                what: what(),
                needed: bytes,
                total: (self.used > 0).then_some(total),
                limit: self.limit,
            });
        }
        Ok(())
    }
}

/// Checks one stage's whole footprint at once: `needed` bytes for `what`.
pub fn check(stage: &'static str, what: &str, needed: u64, limit: u64) -> Result<(), BudgetError> {
    Budget::new(stage, limit).charge(needed, || what.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_add_up_until_the_limit() {
        let mut b = Budget::new("weights", 100);
        assert_eq!(b.charge(60, || "a".into()), Ok(()));
        assert_eq!(b.charge(40, || "b".into()), Ok(()));
        assert_eq!(b.used(), 100);
        let e = b.charge(1, || "c".into()).unwrap_err();
        assert_eq!((e.needed, e.total, e.limit), (1, Some(101), 100));
        // A refused charge leaves the total as it was.
        assert_eq!(b.used(), 100);
        // A single request past the limit has no running total to show.
        let e = check("jit", "the arena", u64::MAX, 100).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("jit: the arena needs {} bytes, more than the memory limit of 100 bytes (--memory-limit)", u64::MAX)
        );
    }
}
