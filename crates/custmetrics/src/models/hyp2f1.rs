//! The Gauss hypergeometric function 2F1(a, b; c; z) for the arguments the CLV models use:
//! a, b, c > 0 and 0 ≤ z < 1.
//!
//! With positive parameters every term of the defining series Σ (a)_k (b)_k / ((c)_k k!) z^k is
//! positive, so the sum is accurate without compensation; it converges geometrically with ratio
//! → z. The sum stops when a term falls below 1e-16 of the total; if that has not happened after
//! [`MAX_TERMS`] terms (z extremely close to 1) it returns an error instead of a silent partial sum.
//! No Rust crate offers a trustworthy 2F1 (see the crate survey), and GSL is GPL.

/// Term cap: at z = 0.9999 the series needs ≈ 370,000 terms for 1e-16.
pub const MAX_TERMS: usize = 2_000_000;

/// Why 2F1 could not be evaluated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Hyp2f1Error {
    /// Arguments outside a, b, c > 0, 0 ≤ z < 1, or not finite.
    Domain,
    /// The series had not converged after [`MAX_TERMS`] terms.
    NotConverged,
}

/// 2F1(a, b; c; z) for a, b, c > 0 and 0 ≤ z < 1.
///
/// # Errors
/// [`Hyp2f1Error`] outside the domain or when the series does not converge.
pub fn hyp2f1(a: f64, b: f64, c: f64, z: f64) -> Result<f64, Hyp2f1Error> {
    hyp2f1_with_cap(a, b, c, z, MAX_TERMS)
}

/// [`hyp2f1`] with a smaller term cap, for likelihoods evaluated thousands of times per
/// iteration, where an argument that close to 1 is better treated as "not here" than waited for.
///
/// # Errors
/// As [`hyp2f1`].
pub fn hyp2f1_with_cap(
    a: f64,
    b: f64,
    c: f64,
    z: f64,
    max_terms: usize,
) -> Result<f64, Hyp2f1Error> {
    let finite = a.is_finite() && b.is_finite() && c.is_finite() && z.is_finite();
    if !finite || a <= 0.0 || b <= 0.0 || c <= 0.0 || !(0.0..1.0).contains(&z) {
        return Err(Hyp2f1Error::Domain);
    }
    let mut term = 1.0f64;
    let mut sum = 1.0f64;
    for k in 0..max_terms {
        let k = k as f64;
        term *= (a + k) * (b + k) / ((c + k) * (k + 1.0)) * z;
        sum += term;
        if !sum.is_finite() {
            return Err(Hyp2f1Error::NotConverged);
        }
        // Once the ratio of successive terms is below 1, the remaining tail is at most
        // term · r/(1 − r); stop when that is negligible.
        let ratio = (a + k + 1.0) * (b + k + 1.0) / ((c + k + 1.0) * (k + 2.0)) * z;
        if ratio < 1.0 && term * ratio / (1.0 - ratio) <= 1e-16 * sum {
            return Ok(sum);
        }
    }
    Err(Hyp2f1Error::NotConverged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_mpmath() {
        // Reference values computed with mpmath (`mp.dps = 30; float(hyp2f1(a, b, c, z))`).
        let cases = [
            (0.2425945, 2.4258881, 2.2188080, 0.5, 1.206730536044167),
            (1.0, 1.0, 2.0, 0.5, 1.3862943611198906), // = −ln(1 − z)/z
            (0.5, 0.5, 1.5, 0.25, std::f64::consts::FRAC_PI_3), // = arcsin(√z)/√z = π/3
            (2.2425945, 4.4258881, 5.2188080, 0.95, 167.74396530358962),
            (3.0, 2.0, 1.5, 0.1, 1.5178761798313607),
        ];
        for (a, b, c, z, want) in cases {
            let got = hyp2f1(a, b, c, z).unwrap();
            assert!(
                ((got - want) / want).abs() < 1e-12,
                "2F1({a},{b};{c};{z}) = {got}, want {want}"
            );
        }
        assert_eq!(hyp2f1(1.0, 1.0, 1.0, 0.0), Ok(1.0));
    }

    #[test]
    fn refuses_outside_the_domain() {
        assert_eq!(hyp2f1(1.0, 1.0, 1.0, 1.0), Err(Hyp2f1Error::Domain));
        assert_eq!(hyp2f1(-1.0, 1.0, 1.0, 0.5), Err(Hyp2f1Error::Domain));
        assert_eq!(hyp2f1(1.0, f64::NAN, 1.0, 0.5), Err(Hyp2f1Error::Domain));
    }

    proptest::proptest! {
        #[test]
        fn euler_transformation_holds(a in 0.1f64..5.0, b in 0.1f64..5.0, c in 0.1f64..8.0, z in 0.0f64..0.9) {
            // 2F1(a,b;c;z) = (1 − z)^(c−a−b) 2F1(c−a, c−b; c; z) (DLMF 15.8.1), where c−a, c−b > 0.
            proptest::prop_assume!(c - a > 0.05 && c - b > 0.05);
            let lhs = hyp2f1(a, b, c, z).unwrap();
            let rhs = (1.0 - z).powf(c - a - b) * hyp2f1(c - a, c - b, c, z).unwrap();
            proptest::prop_assert!(((lhs - rhs) / lhs).abs() < 1e-9, "{lhs} vs {rhs}");
        }
    }
}
