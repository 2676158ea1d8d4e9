//! What a failed SQLite call tells the client: a full disk is `Full` (507), a
//! failing one `Unavailable` (`503`), whatever the message says.

use super::*;
use rusqlite::ffi;

fn sqlite_error(code: i32, message: &str) -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(ffi::Error::new(code), Some(message.to_owned()))
}

#[test]
fn sqlite_errors_are_classified_by_their_result_code_not_their_text() {
    // The message of a failing step inside an operation need not be SQLite's fixed text.
    let full = internal(sqlite_error(ffi::SQLITE_FULL, "insertion failed"));
    assert!(matches!(full, StoreError::Full(_)), "{full:?}");
    let fsync = internal(sqlite_error(ffi::SQLITE_IOERR_FSYNC, "commit failed"));
    assert!(matches!(fsync, StoreError::Unavailable(_)), "{fsync:?}");
    // A message that merely looks like one is not taken for it.
    let other = internal(sqlite_error(
        ffi::SQLITE_CONSTRAINT,
        "database or disk is full",
    ));
    assert!(matches!(other, StoreError::Internal(_)), "{other:?}");
    // Errors that reached us as text only keep SQLite's fixed messages.
    let text = internal("database or disk is full".to_owned());
    assert!(matches!(text, StoreError::Full(_)), "{text:?}");
    let text = internal("nothing to do with the disk");
    assert!(matches!(text, StoreError::Internal(_)), "{text:?}");
}
