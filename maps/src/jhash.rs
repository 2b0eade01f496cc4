//! The kernel's `jhash` / `jhash2` (Bob Jenkins' lookup3), used to pick hash buckets.
//!
//! With seed 0 our bucket order equals the kernel's for maps created with
//! `BPF_F_ZERO_SEED` (spec U1).

const JHASH_INITVAL: u32 = 0xdead_beef;

#[inline(always)]
fn mix(a: &mut u32, b: &mut u32, c: &mut u32) {
    *a = a.wrapping_sub(*c);
    *a ^= c.rotate_left(4);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a);
    *b ^= a.rotate_left(6);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b);
    *c ^= b.rotate_left(8);
    *b = b.wrapping_add(*a);
    *a = a.wrapping_sub(*c);
    *a ^= c.rotate_left(16);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a);
    *b ^= a.rotate_left(19);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b);
    *c ^= b.rotate_left(4);
    *b = b.wrapping_add(*a);
}

#[inline(always)]
fn final_(a: &mut u32, b: &mut u32, c: &mut u32) {
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(14));
    *a ^= *c;
    *a = a.wrapping_sub(c.rotate_left(11));
    *b ^= *a;
    *b = b.wrapping_sub(a.rotate_left(25));
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(16));
    *a ^= *c;
    *a = a.wrapping_sub(c.rotate_left(4));
    *b ^= *a;
    *b = b.wrapping_sub(a.rotate_left(14));
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(24));
}

fn word(k: &[u8], i: usize) -> u32 {
    u32::from_ne_bytes([k[i], k[i + 1], k[i + 2], k[i + 3]])
}

/// `jhash(key, length, initval)`: bytes, any length.
pub fn jhash(key: &[u8], initval: u32) -> u32 {
    let mut a = JHASH_INITVAL
        .wrapping_add(key.len() as u32)
        .wrapping_add(initval);
    let (mut b, mut c) = (a, a);
    let mut k = key;
    while k.len() > 12 {
        a = a.wrapping_add(word(k, 0));
        b = b.wrapping_add(word(k, 4));
        c = c.wrapping_add(word(k, 8));
        mix(&mut a, &mut b, &mut c);
        k = &k[12..];
    }
    if k.is_empty() {
        return c;
    }
    let byte = |i: usize, shift: u32| -> u32 { k.get(i).map_or(0, |&v| u32::from(v) << shift) };
    c = c.wrapping_add(byte(8, 0) | byte(9, 8) | byte(10, 16) | byte(11, 24));
    b = b.wrapping_add(byte(4, 0) | byte(5, 8) | byte(6, 16) | byte(7, 24));
    a = a.wrapping_add(byte(0, 0) | byte(1, 8) | byte(2, 16) | byte(3, 24));
    final_(&mut a, &mut b, &mut c);
    c
}

/// `jhash2(key, length / 4, initval)`: a key made of native-endian u32 words.
/// `key.len()` must be a multiple of 4 (extra bytes are ignored).
pub fn jhash2(key: &[u8], initval: u32) -> u32 {
    let words = key.len() / 4;
    let mut a = JHASH_INITVAL
        .wrapping_add((words as u32) << 2)
        .wrapping_add(initval);
    let (mut b, mut c) = (a, a);
    let w = |c: &[u8], i: usize| u32::from_ne_bytes([c[i], c[i + 1], c[i + 2], c[i + 3]]);
    let body = &key[..words * 4];
    // The kernel loops while more than 3 words are left, so 3 words go to the tail.
    let full = if words == 0 { 0 } else { (words - 1) / 3 };
    let (head, tail) = body.split_at(full * 12);
    for chunk in head.chunks_exact(12) {
        a = a.wrapping_add(w(chunk, 0));
        b = b.wrapping_add(w(chunk, 4));
        c = c.wrapping_add(w(chunk, 8));
        mix(&mut a, &mut b, &mut c);
    }
    match tail.len() / 4 {
        3 => {
            c = c.wrapping_add(w(tail, 8));
            b = b.wrapping_add(w(tail, 4));
            a = a.wrapping_add(w(tail, 0));
        }
        2 => {
            b = b.wrapping_add(w(tail, 4));
            a = a.wrapping_add(w(tail, 0));
        }
        1 => a = a.wrapping_add(w(tail, 0)),
        _ => return c,
    }
    final_(&mut a, &mut b, &mut c);
    c
}

/// The kernel's `htab_map_hash`: `jhash2` when the key size is a multiple of 4, else `jhash`.
pub fn htab_map_hash(key: &[u8], seed: u32) -> u32 {
    if key.len() % 4 == 0 {
        jhash2(key, seed)
    } else {
        jhash(key, seed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup3_reference_vectors() {
        // Bob Jenkins' lookup3.c driver5 vectors (hashlittle, little-endian).
        assert_eq!(jhash(b"", 0), 0xdead_beef);
        assert_eq!(jhash(b"Four score and seven years ago", 0), 0x1777_0551);
        assert_eq!(jhash(b"Four score and seven years ago", 1), 0xcd62_8161);
    }

    #[test]
    fn jhash2_matches_jhash_on_word_keys() {
        // On a little-endian machine jhash2 over words equals jhash over the same bytes.
        if cfg!(target_endian = "little") {
            for len in (0..=40).step_by(4) {
                let key: Vec<u8> = (0..len as u8).map(|b| b.wrapping_mul(37)).collect();
                assert_eq!(jhash2(&key, 0), jhash(&key, 0), "len {len}");
                assert_eq!(jhash2(&key, 7), jhash(&key, 7), "len {len}");
            }
        }
    }
}
