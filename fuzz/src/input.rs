//! [`Input`]: fuzz bytes read as small choices; once the bytes run out every read is 0.

/// A cursor over the fuzz input.
#[derive(Debug)]
pub struct Input<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Input<'a> {
    /// A reader over `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Input { data, pos: 0 }
    }

    /// True when every byte was consumed.
    pub fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    /// The next byte (0 past the end).
    pub fn u8(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }

    /// A little-endian u32 from the next 4 bytes.
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    /// A value in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u32) -> u32 {
        u32::from(self.u8()) % n
    }

    /// One of `xs`.
    pub fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.u8() as usize % xs.len()]
    }

    /// `n` bytes derived from one input byte (values vary without eating the input).
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let seed = self.u8();
        (0..n)
            .map(|i| seed.wrapping_mul(i as u8 | 1).wrapping_add(i as u8 ^ 0x5a))
            .collect()
    }

    /// Element flags biased towards the interesting combinations of spec §1.1 and §4.
    pub fn flags(&mut self, ncpus: u32) -> u64 {
        let lo: u64 = match self.below(4) {
            0 => 0,
            1 => self.pick(&[1, 2, 3, 4, 8, 9, 10, 11, 12, 16, 17, 18, 19, 24, 32]),
            2 => u64::from(self.u8() & 0x1f),
            _ => u64::from(self.u32()),
        };
        let hi: u64 = match self.below(4) {
            0 | 1 => 0,
            2 => u64::from(self.below(ncpus + 2)),
            _ => u64::from(self.pick(&[u32::MAX, ncpus, 1 << 16, 0x8000_0000])),
        };
        (hi << 32) | lo
    }

    /// A buffer length: usually `exact`, sometimes one byte short or a few bytes long.
    pub fn len_around(&mut self, exact: usize) -> usize {
        match self.below(16) {
            0 => exact.saturating_sub(1),
            1 => exact + 5,
            2 => exact / 2,
            _ => exact,
        }
    }
}
