//! Vector helpers: the storage encoding (f32 little-endian) and cosine
//! similarity.

use crate::EmbedError;

/// Encodes a vector as consecutive f32 little-endian values, the form in
/// which the store keeps vectors (4 bytes per dimension).
///
/// ```
/// let bytes = esg_embed::vector_to_le_bytes(&[1.0, -2.5]);
/// assert_eq!(bytes, [0, 0, 0x80, 0x3f, 0, 0, 0x20, 0xc0]);
/// ```
pub fn vector_to_le_bytes(vector: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(vector.len() * 4);
    for x in vector {
        out.extend_from_slice(&x.to_le_bytes());
    }
    out
}

/// Decodes bytes written by [`vector_to_le_bytes`].
///
/// Fails with `invalid_vector_bytes` when the length is not a multiple of 4.
///
/// ```
/// let v = vec![0.25_f32, -1.0, 3.5];
/// let back = esg_embed::vector_from_le_bytes(&esg_embed::vector_to_le_bytes(&v)).unwrap();
/// assert_eq!(back, v);
/// assert_eq!(esg_embed::vector_from_le_bytes(&[0, 1, 2]).unwrap_err().code(), "invalid_vector_bytes");
/// ```
pub fn vector_from_le_bytes(bytes: &[u8]) -> Result<Vec<f32>, EmbedError> {
    if !bytes.len().is_multiple_of(4) {
        return Err(EmbedError::InvalidVectorBytes { len: bytes.len() });
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

/// Cosine similarity of two vectors.
///
/// Computed in f64 and returned as f32. Vectors of different lengths are
/// compared over their common prefix (callers check dimensions first); a
/// zero vector has similarity 0 with everything.
///
/// ```
/// use esg_embed::cosine;
/// assert!((cosine(&[1.0, 0.0], &[2.0, 0.0]) - 1.0).abs() < 1e-6);
/// assert!(cosine(&[1.0, 0.0], &[0.0, 3.0]).abs() < 1e-6);
/// assert_eq!(cosine(&[0.0, 0.0], &[1.0, 1.0]), 0.0);
/// ```
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let (mut dot, mut na, mut nb) = (0.0_f64, 0.0_f64, 0.0_f64);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (f64::from(*x), f64::from(*y));
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if na == 0.0 || nb == 0.0 {
        return 0.0;
    }
    (dot / (na.sqrt() * nb.sqrt())) as f32
}

/// Scales `v` to unit L2 norm in place, as sentence-transformers'
/// `Normalize` module does (a zero vector stays zero: the norm is clamped
/// at 1e-12 like `torch.nn.functional.normalize`).
pub(crate) fn l2_normalize(v: &mut [f32]) {
    let norm = v
        .iter()
        .map(|x| f64::from(*x) * f64::from(*x))
        .sum::<f64>()
        .sqrt()
        .max(1e-12);
    for x in v.iter_mut() {
        *x = (f64::from(*x) / norm) as f32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn le_bytes_round_trip_keeps_every_bit() {
        let v = [
            0.0_f32,
            -0.0,
            1.0,
            f32::MIN_POSITIVE,
            f32::MAX,
            -123.456,
            f32::EPSILON,
        ];
        let bytes = vector_to_le_bytes(&v);
        assert_eq!(bytes.len(), v.len() * 4);
        let back = vector_from_le_bytes(&bytes).unwrap();
        for (a, b) in v.iter().zip(&back) {
            assert_eq!(a.to_bits(), b.to_bits());
        }
        assert!(vector_from_le_bytes(&[]).unwrap().is_empty());
    }

    #[test]
    fn bad_byte_length_is_an_error_naming_the_length() {
        let err = vector_from_le_bytes(&[1, 2, 3, 4, 5]).unwrap_err();
        assert_eq!(err.code(), "invalid_vector_bytes");
        assert!(err.to_string().contains("5 bytes"), "{err}");
    }

    #[test]
    fn normalize_gives_unit_norm_and_keeps_zero() {
        let mut v = vec![3.0, 4.0];
        l2_normalize(&mut v);
        assert!((v[0] - 0.6).abs() < 1e-7 && (v[1] - 0.8).abs() < 1e-7);
        let mut z = vec![0.0; 3];
        l2_normalize(&mut z);
        assert_eq!(z, vec![0.0; 3]);
    }

    #[test]
    fn cosine_is_scale_invariant_and_symmetric() {
        let a = [0.3, -1.2, 2.0];
        let b = [1.0, 0.5, -0.25];
        let scaled: Vec<f32> = a.iter().map(|x| x * 7.0).collect();
        assert!((cosine(&a, &b) - cosine(&scaled, &b)).abs() < 1e-6);
        assert_eq!(cosine(&a, &b), cosine(&b, &a));
        assert!((cosine(&a, &[-0.3, 1.2, -2.0]) + 1.0).abs() < 1e-6);
    }
}
