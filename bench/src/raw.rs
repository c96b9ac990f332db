//! The limit: the same operations called directly on aws-lc-rs, with no PKCS#11 layer.

use aws_lc_rs::digest;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use std::time::{Duration, Instant};

/// Nanoseconds the calling thread has spent on a CPU (Linux `schedstat`), if available.
pub fn thread_cpu_ns() -> Option<u64> {
    cpu_ns("/proc/thread-self/schedstat")
}

/// Nanoseconds on a CPU of this process's threads named `name` (e.g. the module's `cryptera-audit`
/// writer), summed; zero when there is none.
pub fn named_threads_cpu_ns(name: &str) -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .flatten()
        .filter(|task| {
            std::fs::read_to_string(task.path().join("comm")).is_ok_and(|comm| comm.trim() == name)
        })
        .filter_map(|task| cpu_ns(task.path().join("schedstat")))
        .sum()
}

fn cpu_ns(path: impl AsRef<std::path::Path>) -> Option<u64> {
    std::fs::read_to_string(path)
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Whether rates count per second of the measuring thread's CPU time rather than per wall-clock
/// second (`CRYPTERA_BENCH_CLOCK=cpu`): on a shared machine this is what other load disturbs least.
fn per_cpu_second() -> bool {
    std::env::var("CRYPTERA_BENCH_CLOCK").is_ok_and(|v| v == "cpu")
}

/// Runs `op` repeatedly for `period`; returns operations per second.
pub fn rate(period: Duration, mut op: impl FnMut()) -> f64 {
    let start = Instant::now();
    let cpu_start = thread_cpu_ns();
    let mut count = 0u64;
    while start.elapsed() < period {
        op();
        count += 1;
    }
    match (per_cpu_second(), cpu_start, thread_cpu_ns()) {
        (true, Some(a), Some(b)) if b > a => count as f64 / ((b - a) as f64 / 1e9),
        _ => count as f64 / start.elapsed().as_secs_f64(),
    }
}

pub fn rsa_sign(bits: usize, hashed: bool) -> impl Fn(Duration) -> f64 {
    move |period| {
        let size = if bits == 3072 {
            KeySize::Rsa3072
        } else {
            KeySize::Rsa2048
        };
        let key = RsaKeyPair::generate(size).expect("rsa");
        let _ = key.as_der();
        let mut sig = vec![0u8; key.public_modulus_len()];
        let rng = SystemRandom::new();
        let message = [7u8; 64];
        let hash = digest::digest(&digest::SHA256, &message);
        rate(period, || {
            if hashed {
                key.sign(&signature::RSA_PKCS1_SHA256, &rng, &message, &mut sig)
                    .expect("sign");
            } else {
                key.sign_digest(&signature::RSA_PKCS1_SHA256, &hash, &mut sig)
                    .expect("sign");
            }
        })
    }
}

pub fn ecdsa_sign(p384: bool) -> impl Fn(Duration) -> f64 {
    move |period| {
        let alg = if p384 {
            &signature::ECDSA_P384_SHA384_FIXED_SIGNING
        } else {
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING
        };
        let key = EcdsaKeyPair::generate(alg).expect("ec");
        let hash = digest::digest(
            if p384 {
                &digest::SHA384
            } else {
                &digest::SHA256
            },
            &[7u8; 64],
        );
        rate(period, || {
            key.sign_digest(&hash).expect("sign");
        })
    }
}

pub fn ed25519_sign(period: Duration) -> f64 {
    let key = Ed25519KeyPair::generate().expect("ed25519");
    let _ = key.public_key();
    rate(period, || {
        let _ = key.sign(&[7u8; 64]);
    })
}

pub fn p256_verify(period: Duration) -> f64 {
    let key = EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING).expect("ec");
    let hash = digest::digest(&digest::SHA256, &[7u8; 64]);
    let sig = key.sign_digest(&hash).expect("sign");
    let public = signature::UnparsedPublicKey::new(
        &signature::ECDSA_P256_SHA256_FIXED,
        key.public_key().as_ref().to_vec(),
    );
    rate(period, || {
        public.verify_digest(&hash, sig.as_ref()).expect("verify")
    })
}

/// SHA-256 throughput in MiB/s over 10 MiB in 1 MiB pieces.
pub fn sha256_mib(period: Duration) -> f64 {
    let chunk = vec![0x5au8; 1 << 20];
    10.0 * rate(period, || {
        let mut ctx = digest::Context::new(&digest::SHA256);
        for _ in 0..10 {
            ctx.update(&chunk);
        }
        let _ = ctx.finish();
    })
}

pub fn keygen_ec(p384: bool) -> impl Fn(Duration) -> f64 {
    move |period| {
        let alg = if p384 {
            &signature::ECDSA_P384_SHA384_FIXED_SIGNING
        } else {
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING
        };
        rate(period, || {
            EcdsaKeyPair::generate(alg).expect("ec");
        })
    }
}

pub fn keygen_ed25519(period: Duration) -> f64 {
    rate(period, || {
        Ed25519KeyPair::generate().expect("ed25519");
    })
}

/// SHA-256 over 10 MiB in 1 MiB pieces and one RSA-2048 PKCS#1 signature of the digest, in MiB/s:
/// what `CKM_SHA256_RSA_PKCS` over 10 MiB does.
pub fn sha256_rsa_mib(period: Duration) -> f64 {
    let key = RsaKeyPair::generate(KeySize::Rsa2048).expect("rsa");
    let mut sig = vec![0u8; key.public_modulus_len()];
    let chunk = vec![0x5au8; 1 << 20];
    10.0 * rate(period, || {
        let mut ctx = digest::Context::new(&digest::SHA256);
        for _ in 0..10 {
            ctx.update(&chunk);
        }
        let hash = ctx.finish();
        key.sign_digest(&signature::RSA_PKCS1_SHA256, &hash, &mut sig)
            .expect("sign");
    })
}
