//! Redis's HyperLogLog for the `mem://` twin of `PFADD` and `PFCOUNT`: the same hash
//! (MurmurHash64A, seed `0xadc83b19`), the same 16384 registers and the same estimator (Otmar
//! Ertl's, as `hyperloglog.c` since Redis 5), so that both backends give the same count for the
//! same elements, exactly (a conformance check compares them). Dense only: a register is a
//! byte here (16 KB per key); Redis's sparse encoding changes the memory, not the count.

/// log2 of the number of registers.
const P: u32 = 14;
const REGISTERS: usize = 1 << P;
/// Bits of the hash left after the register index.
const Q: u32 = 64 - P;
/// 0.5 / ln 2: the estimator's constant for infinitely many registers.
const ALPHA_INF: f64 = 0.721_347_520_444_481_7;

/// One HyperLogLog: the longest run of zeros (plus one) seen per register.
pub(crate) struct Hll {
    registers: Box<[u8; REGISTERS]>,
}

impl Default for Hll {
    fn default() -> Self {
        Hll {
            registers: Box::new([0; REGISTERS]),
        }
    }
}

impl Hll {
    /// `PFADD`'s step for one element: `true` when a register grew.
    pub(crate) fn add(&mut self, element: &[u8]) -> bool {
        let (index, run) = pattern(element);
        match self.registers.get_mut(index) {
            Some(register) if *register < run => {
                *register = run;
                true
            }
            _ => false,
        }
    }

    /// Folds `other` into `self` (register-wise maximum), as `PFCOUNT` of several keys does.
    pub(crate) fn merge(&mut self, other: &Hll) {
        for (mine, theirs) in self.registers.iter_mut().zip(other.registers.iter()) {
            *mine = (*mine).max(*theirs);
        }
    }

    /// `PFCOUNT`: the estimated number of distinct elements added.
    pub(crate) fn count(&self) -> u64 {
        let mut histogram = [0u32; 64];
        for &register in self.registers.iter() {
            if let Some(slot) = histogram.get_mut(usize::from(register)) {
                *slot += 1;
            }
        }
        estimate(&histogram)
    }
}

/// The register an element falls in, and the length of the run of zeros (plus one) in the
/// rest of its hash.
fn pattern(element: &[u8]) -> (usize, u8) {
    let hash = murmur_hash_64a(element, 0xadc8_3b19);
    // REGISTERS is a power of two: the mask keeps the index in range.
    let index = (hash & (REGISTERS as u64 - 1)) as usize;
    // The sentinel bit ends the run at Q + 1 at most.
    let rest = (hash >> P) | (1 << Q);
    (index, rest.trailing_zeros() as u8 + 1)
}

/// Redis's `hllCount` estimator over the histogram of register values.
fn estimate(histogram: &[u32; 64]) -> u64 {
    let m = REGISTERS as f64;
    let at = |i: u32| f64::from(histogram[i as usize]);
    let mut z = m * tau((m - at(Q + 1)) / m);
    for j in (1..=Q).rev() {
        z += at(j);
        z *= 0.5;
    }
    z += m * sigma(at(0) / m);
    // All registers empty: sigma(1) is infinite and the estimate 0, as in Redis.
    let estimate = (ALPHA_INF * m * m / z).round();
    if estimate.is_finite() && estimate > 0.0 {
        estimate as u64
    } else {
        0
    }
}

fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let mut y = 1.0;
    let mut z = x;
    loop {
        x *= x;
        let previous = z;
        z += x * y;
        y += y;
        if previous == z {
            return z;
        }
    }
}

fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let mut y = 1.0;
    let mut z = 1.0 - x;
    loop {
        x = x.sqrt();
        let previous = z;
        y *= 0.5;
        z -= (1.0 - x).powi(2) * y;
        if previous == z {
            return z / 3.0;
        }
    }
}

/// MurmurHash64A as Redis computes it (little-endian words).
fn murmur_hash_64a(key: &[u8], seed: u64) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    let mut h = seed ^ (key.len() as u64).wrapping_mul(M);
    let mut words = key.chunks_exact(8);
    for word in &mut words {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(word);
        let mut k = u64::from_le_bytes(bytes);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let tail = words.remainder();
    if !tail.is_empty() {
        for (i, &byte) in tail.iter().enumerate() {
            h ^= u64::from(byte) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_log_counts_zero_and_one_element_one() {
        let mut hll = Hll::default();
        assert_eq!(hll.count(), 0);
        assert!(hll.add(b"a"));
        assert!(!hll.add(b"a"), "the same element changes nothing");
        assert_eq!(hll.count(), 1);
    }

    #[test]
    fn counts_are_within_the_standard_error() {
        let mut hll = Hll::default();
        for i in 0..100_000u32 {
            hll.add(&i.to_le_bytes());
        }
        let count = hll.count() as f64;
        // 0.81 % standard error; 3 sigma.
        assert!((count - 100_000.0).abs() < 100_000.0 * 0.0243, "{count}");
    }

    #[test]
    fn merging_counts_the_union() {
        let (mut a, mut b) = (Hll::default(), Hll::default());
        for i in 0..1000u32 {
            a.add(format!("a{i}").as_bytes());
            b.add(format!("b{i}").as_bytes());
            b.add(format!("a{i}").as_bytes());
        }
        a.merge(&b);
        let count = a.count();
        assert!((1900..=2100).contains(&count), "{count}");
    }
}
