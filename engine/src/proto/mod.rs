//! ZooKeeper's wire protocol: the jute primitive codec, the records of `zookeeper.jute`, and the
//! numeric codes (opcodes, error codes, event types, permissions, create modes).
//!
//! Runs on whichever core decodes or encodes a packet (network cores, the bench client).
//! In: the payload of one length-prefixed frame. Out: typed records, or a [`DecodeError`]
//! that the caller answers by closing that one connection. Jute is big-endian throughout:
//! `int` i32, `long` i64, `boolean` one byte, `buffer`/`ustring` an i32 length (-1 = null)
//! then the bytes, `vector<T>` an i32 count (-1 = null) then the items.

pub mod codes;
pub mod records;

pub use codes::*;
pub use records::*;

/// Default `jute.maxbuffer`: the largest frame a client or server accepts (1 MiB - 1, as Apache).
pub const JUTE_MAX_BUFFER_DEFAULT: usize = 0xfffff;

/// Why a frame could not be decoded; always fatal for the connection that sent it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("frame ended after {offset} bytes while reading {what}")]
    Truncated { what: &'static str, offset: usize },
    #[error("negative or oversized length {length} for {what} at offset {offset}")]
    BadLength { what: &'static str, length: i32, offset: usize },
    #[error("string is not valid UTF-8 at offset {offset}")]
    BadUtf8 { offset: usize },
    #[error("unknown opcode {0}")]
    UnknownOpcode(i32),
}

/// Cursor over one frame's payload (a clone reads ahead without moving this one).
#[derive(Clone)]
pub struct JuteReader<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> JuteReader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, offset: 0 }
    }

    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.offset
    }

    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Everything not read yet (consumes it).
    pub fn rest(&mut self) -> &'a [u8] {
        let rest = &self.bytes[self.offset..];
        self.offset = self.bytes.len();
        rest
    }

    fn take(&mut self, count: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < count {
            return Err(DecodeError::Truncated { what, offset: self.offset });
        }
        let slice = &self.bytes[self.offset..self.offset + count];
        self.offset += count;
        Ok(slice)
    }

    /// The next `count` bytes as they are.
    pub fn read_raw(&mut self, count: usize) -> Result<&'a [u8], DecodeError> {
        self.take(count, "bytes")
    }

    pub fn read_i32(&mut self) -> Result<i32, DecodeError> {
        let b = self.take(4, "int")?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn read_i64(&mut self) -> Result<i64, DecodeError> {
        let b = self.take(8, "long")?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }

    pub fn read_bool(&mut self) -> Result<bool, DecodeError> {
        Ok(self.take(1, "boolean")?[0] != 0)
    }

    fn read_length(&mut self, what: &'static str) -> Result<Option<usize>, DecodeError> {
        let offset = self.offset;
        let length = self.read_i32()?;
        if length == -1 {
            return Ok(None);
        }
        if length < 0 || length as usize > self.remaining() {
            return Err(DecodeError::BadLength { what, length, offset });
        }
        Ok(Some(length as usize))
    }

    /// A jute `buffer` where null and empty mean the same (passwords, auth data).
    pub fn read_buffer(&mut self) -> Result<Vec<u8>, DecodeError> {
        Ok(self.read_nullable_buffer()?.unwrap_or_default())
    }

    /// A jute `buffer` that may be null (length -1): znode data, which Apache stores and
    /// returns as null.
    pub fn read_nullable_buffer(&mut self) -> Result<Option<Vec<u8>>, DecodeError> {
        match self.read_length("buffer")? {
            None => Ok(None),
            Some(n) => Ok(Some(self.take(n, "buffer")?.to_vec())),
        }
    }

    /// A jute `ustring`; null decodes as empty.
    pub fn read_string(&mut self) -> Result<String, DecodeError> {
        let offset = self.offset;
        match self.read_length("ustring")? {
            None => Ok(String::new()),
            Some(n) => {
                let bytes = self.take(n, "ustring")?;
                std::str::from_utf8(bytes).map(str::to_owned).map_err(|_| DecodeError::BadUtf8 { offset })
            }
        }
    }

    /// A jute `vector<T>`; null decodes as empty. Each item needs at least one byte, so a count
    /// larger than what is left is rejected before anything is allocated.
    pub fn read_vec<T>(
        &mut self,
        mut item: impl FnMut(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Vec<T>, DecodeError> {
        match self.read_length("vector")? {
            None => Ok(Vec::new()),
            Some(n) => {
                let mut out = Vec::with_capacity(n);
                for _ in 0..n {
                    out.push(item(self)?);
                }
                Ok(out)
            }
        }
    }
}

/// Room [`JuteWriter::write_buffer`] leaves after a buffer it had to grow the output for:
/// the fields that follow data in a reply or txn (a Stat is 68 bytes) fit without another
/// reallocation.
const BUFFER_TRAILER_BYTES: usize = 128;

/// Appends jute-encoded values to a byte buffer.
pub struct JuteWriter<'a> {
    pub out: &'a mut Vec<u8>,
}

impl<'a> JuteWriter<'a> {
    pub fn new(out: &'a mut Vec<u8>) -> Self {
        Self { out }
    }
    pub fn write_i32(&mut self, v: i32) {
        self.out.extend_from_slice(&v.to_be_bytes());
    }
    pub fn write_i64(&mut self, v: i64) {
        self.out.extend_from_slice(&v.to_be_bytes());
    }
    pub fn write_bool(&mut self, v: bool) {
        self.out.push(v as u8);
    }
    pub fn write_buffer(&mut self, v: &[u8]) {
        let needed = 4 + v.len();
        if self.out.capacity() - self.out.len() < needed {
            // Exactly what is needed plus room for what usually follows (a Stat): doubling
            // a frame for a 1 MiB znode reserved 2 MiB and copied through every size below.
            self.out.reserve_exact(needed + BUFFER_TRAILER_BYTES);
        }
        self.write_i32(v.len() as i32);
        self.out.extend_from_slice(v);
    }
    /// A null buffer (length -1), as Apache writes for absent data.
    pub fn write_null(&mut self) {
        self.write_i32(-1);
    }
    /// A buffer that may be null (length -1 then nothing).
    pub fn write_nullable_buffer(&mut self, v: Option<&[u8]>) {
        match v {
            Some(bytes) => self.write_buffer(bytes),
            None => self.write_null(),
        }
    }
    pub fn write_string(&mut self, v: &str) {
        self.write_buffer(v.as_bytes());
    }
    pub fn write_vec<T>(&mut self, items: &[T], mut item: impl FnMut(&mut Self, &T)) {
        self.write_i32(items.len() as i32);
        for i in items {
            item(self, i);
        }
    }
}

/// A record with a jute encoding.
pub trait Jute: Sized {
    fn decode(r: &mut JuteReader<'_>) -> Result<Self, DecodeError>;
    fn encode(&self, w: &mut JuteWriter<'_>);

    /// Decodes a whole payload.
    fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        Self::decode(&mut JuteReader::new(bytes))
    }

    /// Encodes into a fresh buffer.
    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut JuteWriter::new(&mut out));
        out
    }
}

/// A jute field type: how one field of a record is read and written.
pub trait JuteField: Sized {
    fn read_field(r: &mut JuteReader<'_>) -> Result<Self, DecodeError>;
    fn write_field(&self, w: &mut JuteWriter<'_>);
}

impl JuteField for i32 {
    fn read_field(r: &mut JuteReader<'_>) -> Result<Self, DecodeError> {
        r.read_i32()
    }
    fn write_field(&self, w: &mut JuteWriter<'_>) {
        w.write_i32(*self)
    }
}

impl JuteField for i64 {
    fn read_field(r: &mut JuteReader<'_>) -> Result<Self, DecodeError> {
        r.read_i64()
    }
    fn write_field(&self, w: &mut JuteWriter<'_>) {
        w.write_i64(*self)
    }
}

impl JuteField for bool {
    fn read_field(r: &mut JuteReader<'_>) -> Result<Self, DecodeError> {
        r.read_bool()
    }
    fn write_field(&self, w: &mut JuteWriter<'_>) {
        w.write_bool(*self)
    }
}

impl JuteField for String {
    fn read_field(r: &mut JuteReader<'_>) -> Result<Self, DecodeError> {
        r.read_string()
    }
    fn write_field(&self, w: &mut JuteWriter<'_>) {
        w.write_string(self)
    }
}

/// A `ustring` that may be null (length -1), where null means "not given" (a reconfig's
/// joining, leaving and newMembers lists).
impl JuteField for Option<String> {
    fn read_field(r: &mut JuteReader<'_>) -> Result<Self, DecodeError> {
        let offset = r.offset;
        match r.read_nullable_buffer()? {
            None => Ok(None),
            Some(bytes) => String::from_utf8(bytes).map(Some).map_err(|_| DecodeError::BadUtf8 { offset }),
        }
    }
    fn write_field(&self, w: &mut JuteWriter<'_>) {
        w.write_nullable_buffer(self.as_deref().map(str::as_bytes))
    }
}

impl JuteField for Vec<u8> {
    fn read_field(r: &mut JuteReader<'_>) -> Result<Self, DecodeError> {
        r.read_buffer()
    }
    fn write_field(&self, w: &mut JuteWriter<'_>) {
        w.write_buffer(self)
    }
}

/// Znode data: `None` is jute's null buffer (length -1), distinct from empty.
impl JuteField for Option<Vec<u8>> {
    fn read_field(r: &mut JuteReader<'_>) -> Result<Self, DecodeError> {
        r.read_nullable_buffer()
    }
    fn write_field(&self, w: &mut JuteWriter<'_>) {
        w.write_nullable_buffer(self.as_deref())
    }
}

impl JuteField for Vec<String> {
    fn read_field(r: &mut JuteReader<'_>) -> Result<Self, DecodeError> {
        r.read_vec(|r| r.read_string())
    }
    fn write_field(&self, w: &mut JuteWriter<'_>) {
        w.write_vec(self, |w, s| w.write_string(s))
    }
}

/// Declares a jute record: the struct, and its [`Jute`] codec in field order.
#[macro_export]
macro_rules! jute_record {
    ($(#[$meta:meta])* $name:ident { $($(#[$fmeta:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
        pub struct $name { $($(#[$fmeta])* pub $field: $ty),* }

        impl $crate::proto::Jute for $name {
            #[allow(unused_variables)]
            fn decode(r: &mut $crate::proto::JuteReader<'_>) -> Result<Self, $crate::proto::DecodeError> {
                Ok(Self { $($field: <$ty as $crate::proto::JuteField>::read_field(r)?),* })
            }
            #[allow(unused_variables)]
            fn encode(&self, w: &mut $crate::proto::JuteWriter<'_>) {
                $(<$ty as $crate::proto::JuteField>::write_field(&self.$field, w);)*
            }
        }

        impl $crate::proto::JuteField for $name {
            fn read_field(r: &mut $crate::proto::JuteReader<'_>) -> Result<Self, $crate::proto::DecodeError> {
                <Self as $crate::proto::Jute>::decode(r)
            }
            fn write_field(&self, w: &mut $crate::proto::JuteWriter<'_>) {
                <Self as $crate::proto::Jute>::encode(self, w)
            }
        }

        impl $crate::proto::JuteField for Vec<$name> {
            fn read_field(r: &mut $crate::proto::JuteReader<'_>) -> Result<Self, $crate::proto::DecodeError> {
                r.read_vec(|r| <$name as $crate::proto::Jute>::decode(r))
            }
            fn write_field(&self, w: &mut $crate::proto::JuteWriter<'_>) {
                w.write_vec(self, |w, item| <$name as $crate::proto::Jute>::encode(item, w))
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_round_trips_in_field_order() {
        let stat = Stat {
            czxid: 1,
            mzxid: 2,
            ctime: 3,
            mtime: 4,
            version: 5,
            cversion: 6,
            aversion: 7,
            ephemeral_owner: 8,
            data_length: 9,
            num_children: 10,
            pzxid: 11,
        };
        let bytes = stat.to_bytes();
        assert_eq!(bytes.len(), 68);
        assert_eq!(&bytes[0..8], &1i64.to_be_bytes());
        assert_eq!(&bytes[60..68], &11i64.to_be_bytes());
        assert_eq!(Stat::from_bytes(&bytes).unwrap(), stat);
    }

    #[test]
    fn oversized_vector_count_is_rejected_before_allocating() {
        let mut bytes = Vec::new();
        JuteWriter::new(&mut bytes).write_i32(i32::MAX);
        let err = JuteReader::new(&bytes).read_vec(|r| r.read_i32()).unwrap_err();
        assert!(matches!(err, DecodeError::BadLength { .. }));
    }

    #[test]
    fn null_buffer_reads_as_empty_or_none_and_truncation_is_an_error() {
        let mut bytes = Vec::new();
        JuteWriter::new(&mut bytes).write_null();
        assert_eq!(JuteReader::new(&bytes).read_buffer().unwrap(), Vec::<u8>::new());
        assert_eq!(JuteReader::new(&bytes).read_nullable_buffer().unwrap(), None);
        let mut again = Vec::new();
        Option::<Vec<u8>>::None.write_field(&mut JuteWriter::new(&mut again));
        assert_eq!(again, bytes, "None writes the null buffer");
        let mut empty = Vec::new();
        JuteWriter::new(&mut empty).write_buffer(&[]);
        assert_eq!(JuteReader::new(&empty).read_nullable_buffer().unwrap(), Some(Vec::new()));
        assert!(matches!(JuteReader::new(&bytes[..2]).read_i32(), Err(DecodeError::Truncated { .. })));
    }
}
