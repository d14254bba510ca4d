//! A small little-endian byte codec for aggregate states (parallel workers, Citus).

use super::error::corrupt_state;
use super::CoreError;

#[derive(Default)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn with_capacity(n: usize) -> Self {
        Writer { buf: Vec::with_capacity(n) }
    }
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn f64(&mut self, v: f64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn f64s(&mut self, v: &[f64]) {
        self.u64(v.len() as u64);
        self.buf.reserve(v.len() * 8);
        for x in v {
            self.f64(*x);
        }
    }
    pub fn bytes(&mut self, v: &[u8]) {
        self.u64(v.len() as u64);
        self.buf.extend_from_slice(v);
    }
    /// An unsigned LEB128 number (7 bits per byte, low first).
    pub fn leb128(&mut self, mut v: u64) {
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.buf.push(byte);
                return;
            }
            self.buf.push(byte | 0x80);
        }
    }
}

pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], CoreError> {
        if self.buf.len() < n {
            return Err(corrupt_state("truncated"));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }
    fn arr8(&mut self) -> Result<[u8; 8], CoreError> {
        let s = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(a)
    }
    pub fn u8(&mut self) -> Result<u8, CoreError> {
        Ok(self.take(1)?[0])
    }
    pub fn u64(&mut self) -> Result<u64, CoreError> {
        Ok(u64::from_le_bytes(self.arr8()?))
    }
    pub fn i64(&mut self) -> Result<i64, CoreError> {
        Ok(i64::from_le_bytes(self.arr8()?))
    }
    pub fn f64(&mut self) -> Result<f64, CoreError> {
        Ok(f64::from_le_bytes(self.arr8()?))
    }
    /// A length prefix, checked against the bytes left so a corrupt length cannot allocate wildly.
    fn len(&mut self, elem_size: usize) -> Result<usize, CoreError> {
        let n = self.u64()?;
        let n = usize::try_from(n).map_err(|_| corrupt_state("length"))?;
        if n.checked_mul(elem_size).is_none_or(|b| b > self.buf.len()) {
            return Err(corrupt_state("length"));
        }
        Ok(n)
    }
    pub fn f64s(&mut self) -> Result<Vec<f64>, CoreError> {
        let n = self.len(8)?;
        let raw = self.take(n * 8)?;
        Ok(raw
            .chunks_exact(8)
            .map(|c| {
                let mut a = [0u8; 8];
                a.copy_from_slice(c);
                f64::from_le_bytes(a)
            })
            .collect())
    }
    pub fn bytes(&mut self) -> Result<&'a [u8], CoreError> {
        let n = self.len(1)?;
        self.take(n)
    }
    pub fn leb128(&mut self) -> Result<u64, CoreError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.u8()?;
            let bits = (byte & 0x7f) as u64;
            if shift == 63 && bits > 1 {
                return Err(corrupt_state("number too large"));
            }
            v |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(corrupt_state("number too long"))
    }
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
    pub fn finish(self) -> Result<(), CoreError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(corrupt_state("trailing bytes"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_truncation() {
        let mut w = Writer::default();
        w.u8(7);
        w.i64(-5);
        w.f64s(&[1.5, -2.0]);
        w.bytes(b"abc");
        let mut r = Reader::new(&w.buf);
        assert_eq!(r.u8().unwrap(), 7);
        assert_eq!(r.i64().unwrap(), -5);
        assert_eq!(r.f64s().unwrap(), vec![1.5, -2.0]);
        assert_eq!(r.bytes().unwrap(), b"abc");
        r.finish().unwrap();
        for cut in 0..w.buf.len() {
            let mut r = Reader::new(&w.buf[..cut]);
            let ok = r.u8().and_then(|_| r.i64()).and_then(|_| r.f64s()).and_then(|_| r.bytes().map(|_| ()));
            assert!(ok.is_err(), "cut at {cut} must fail");
        }
    }

    #[test]
    fn huge_length_is_rejected_not_allocated() {
        let mut w = Writer::default();
        w.u64(u64::MAX / 2);
        assert!(Reader::new(&w.buf).f64s().is_err());
    }
}
