//! The codecs on the product struct of the other benchmarks (~190 bytes as JSON): decoding
//! alone, and a whole `#[cached]` hit on `mem://` (which decodes on every hit), per codec.
//! Prints each codec's payload size once.
//!
//! ```text
//! cargo bench --bench codecs        # or RUNS=3 scripts/bench-report codecs
//! ```
//!
//! Groups: `decode` (`serde_json::from_slice`, `rmp_serde::from_slice`,
//! `postcard::from_bytes`), `encode` (the same three, into a fresh `Vec`), `mem_hit` (the same
//! function with `codec = "json" | "msgpack" | "postcard"`).

mod support;

use criterion::{Criterion, criterion_group, criterion_main};
use redis_patterns::{Client, cached};
use serde::Serialize;
use support::{Product, runtime, sample, sequential};

#[cached(key = "json:<id>", ttl = "1h", codec = "json", client = client)]
async fn product_json(client: &Client, id: u64) -> Result<Product, String> {
    Ok(sample(id))
}

#[cached(key = "msgpack:<id>", ttl = "1h", codec = "msgpack", client = client)]
async fn product_msgpack(client: &Client, id: u64) -> Result<Product, String> {
    Ok(sample(id))
}

#[cached(key = "postcard:<id>", ttl = "1h", codec = "postcard", client = client)]
async fn product_postcard(client: &Client, id: u64) -> Result<Product, String> {
    Ok(sample(id))
}

/// The product in each codec, as the envelope stores it (named fields for MessagePack).
fn encoded() -> [(&'static str, Vec<u8>); 3] {
    let product = sample(1);
    let mut msgpack = Vec::new();
    product
        .serialize(&mut rmp_serde::Serializer::new(&mut msgpack).with_struct_map())
        .unwrap();
    [
        ("json", serde_json::to_vec(&product).unwrap()),
        ("msgpack", msgpack),
        ("postcard", postcard::to_stdvec(&product).unwrap()),
    ]
}

fn decode(c: &mut Criterion) {
    let encoded = encoded();
    for (name, bytes) in &encoded {
        eprintln!("payload size, {name}: {} bytes", bytes.len());
    }
    let mut group = c.benchmark_group("decode");
    let [(_, json), (_, msgpack), (_, postcard)] = &encoded;
    group.bench_function("json", |b| {
        b.iter(|| serde_json::from_slice::<Product>(json).unwrap())
    });
    group.bench_function("msgpack", |b| {
        b.iter(|| rmp_serde::from_slice::<Product>(msgpack).unwrap())
    });
    group.bench_function("postcard", |b| {
        b.iter(|| postcard::from_bytes::<Product>(postcard).unwrap())
    });
    group.finish();
}

fn encode(c: &mut Criterion) {
    let product = sample(1);
    let mut group = c.benchmark_group("encode");
    group.bench_function("json", |b| b.iter(|| serde_json::to_vec(&product).unwrap()));
    group.bench_function("msgpack", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(128);
            product
                .serialize(&mut rmp_serde::Serializer::new(&mut out).with_struct_map())
                .unwrap();
            out
        })
    });
    group.bench_function("postcard", |b| {
        b.iter(|| postcard::to_stdvec(&product).unwrap())
    });
    group.finish();
}

fn mem_hit(c: &mut Criterion) {
    let rt = runtime();
    let client = Client::new("mem://").unwrap();
    rt.block_on(async {
        product_json(&client, 1).await.unwrap();
        product_msgpack(&client, 1).await.unwrap();
        product_postcard(&client, 1).await.unwrap();
    });
    let mut group = c.benchmark_group("mem_hit");
    group.bench_function("json", |b| {
        b.iter_custom(|iters| sequential(&rt, iters, || product_json(&client, 1)))
    });
    group.bench_function("msgpack", |b| {
        b.iter_custom(|iters| sequential(&rt, iters, || product_msgpack(&client, 1)))
    });
    group.bench_function("postcard", |b| {
        b.iter_custom(|iters| sequential(&rt, iters, || product_postcard(&client, 1)))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = support::criterion();
    targets = decode, encode, mem_hit
}
criterion_main!(benches);
