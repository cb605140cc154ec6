//! Containment of panics: a bug triggered by one camera's frames must end that camera's file,
//! not the node and every other session with it.

use std::panic::{AssertUnwindSafe, catch_unwind};

/// Runs `work`; a panic inside it becomes `Err` with the panic's message.
///
/// `AssertUnwindSafe` is sound here because the caller throws away whatever state `work` was
/// mutating (the file being written) when this returns `Err`.
pub fn contain_panic<T>(work: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(work)).map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_an_error_with_its_message() {
        assert_eq!(contain_panic(|| 7), Ok(7));
        assert_eq!(contain_panic(|| -> u8 { panic!("bad frame {}", 3) }), Err("bad frame 3".to_owned()));
        assert_eq!(contain_panic(|| -> u8 { std::panic::panic_any(5_u32) }), Err("a panic without a message".into()));
    }

    #[test]
    fn the_thread_goes_on_after_a_contained_panic() {
        let worker = std::thread::spawn(|| {
            let first = contain_panic(|| -> u8 { panic!("first") });
            let second = contain_panic(|| 2);
            (first.is_err(), second)
        });
        assert_eq!(worker.join().unwrap(), (true, Ok(2)));
    }
}
