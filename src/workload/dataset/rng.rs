//! The stable randomness and hashing the data derives from: written out here, because the data
//! behind a fingerprint must never change with a crate's release.

use rand::RngCore;

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Combines several numbers into one well-mixed seed.
pub(crate) fn mix(parts: &[u64]) -> u64 {
    let mut state = 0x6a09_e667_f3bc_c909u64;
    let mut out = 0;
    for &p in parts {
        state ^= p;
        out = splitmix64(&mut state);
        state = out;
    }
    out
}

/// xoshiro256++, written out here rather than using `SmallRng`/`StdRng`,
/// whose streams rand documents as free to change between releases and
/// platforms: the data behind a fingerprint must stay the same.
pub(crate) struct RowRng {
    s: [u64; 4],
}

impl RowRng {
    pub(crate) fn new(seed: u64) -> Self {
        let mut sm = seed;
        RowRng {
            s: std::array::from_fn(|_| splitmix64(&mut sm)),
        }
    }
}

impl RngCore for RowRng {
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    fn fill_bytes(&mut self, dst: &mut [u8]) {
        for chunk in dst.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

/// 64-bit FNV-1a: tiny and stable forever, unlike std's `DefaultHasher`.
pub(crate) struct Fnv(u64);

impl Fnv {
    pub(crate) fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    pub(crate) fn bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    pub(crate) fn u64(&mut self, v: u64) {
        self.bytes(&v.to_le_bytes());
    }

    pub(crate) fn finish(&self) -> u64 {
        self.0
    }
}
