//! Compiles the `.proto` files with protox (pure Rust), so no system `protoc`
//! is needed for Goulette's own protocol.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/goulette/v1/errors.proto",
        "proto/goulette/v1/cluster.proto",
        "proto/goulette/v1/security.proto",
        "proto/goulette/v1/client.proto",
        "proto/goulette/v1/internal.proto",
    ];
    for f in files {
        println!("cargo:rerun-if-changed={f}");
    }
    let fds = protox::compile(files, ["proto"])?;
    tonic_prost_build::configure().bytes(".").compile_fds(fds)?;
    Ok(())
}
