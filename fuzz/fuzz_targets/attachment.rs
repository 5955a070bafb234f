#![no_main]
//! An external part read as an attachment never panics, and one it accepts
//! gives back the same part; a chunk of any bytes opens or is refused as
//! tampered, never panics (files-v1.md).

use kith_content::{Content, PartBody};
use kith_files::{Attachment, FileKey};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(content) = Content::from_cbor(data)
        && let PartBody::External(x) = &content.part.body
        && let Ok(a) = Attachment::from_part(x)
    {
        let PartBody::External(again) = a.to_part().body else {
            panic!("an attachment's part is external");
        };
        assert_eq!(Attachment::from_part(&again), Ok(a));
    }
    if let Ok(key) = FileKey::from_parts(&[7; 32], &[9; 12]) {
        let index = data.first().copied().map_or(0, u32::from);
        let _ = key.open_chunk(index, 256, data);
    }
    let _ = kith_files::safe_name(&String::from_utf8_lossy(data));
});
