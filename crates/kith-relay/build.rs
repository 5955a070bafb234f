//! Compiles the PostgreSQL test suites only where a server is named
//! (`KITH_TEST_POSTGRES_URL`); elsewhere they report themselves skipped.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(kith_postgres_tests)");
    println!("cargo::rerun-if-env-changed=KITH_TEST_POSTGRES_URL");
    if std::env::var("KITH_TEST_POSTGRES_URL").is_ok_and(|url| !url.is_empty()) {
        println!("cargo::rustc-cfg=kith_postgres_tests");
    }
}
