//! Throwaway certificates for TLS tests, made with the `openssl` command at test time: a CA,
//! and a server certificate for `127.0.0.1` and `localhost` signed by it.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A CA and a server certificate signed by it, in a temporary directory.
pub struct Certificates {
    dir: tempfile::TempDir,
}

/// What a TLS `redis-server` needs: its certificate, key, and the CA that clients present
/// certificates from (if they do).
#[derive(Clone)]
pub struct ServerFiles {
    cert: PathBuf,
    key: PathBuf,
    ca: PathBuf,
}

impl ServerFiles {
    /// The `redis-server` arguments for TLS on `port` only.
    pub fn args(&self, port: u16) -> Vec<String> {
        let path = |p: &Path| p.to_string_lossy().into_owned();
        vec![
            "--port".into(),
            "0".into(),
            "--tls-port".into(),
            port.to_string(),
            "--tls-cert-file".into(),
            path(&self.cert),
            "--tls-key-file".into(),
            path(&self.key),
            "--tls-ca-cert-file".into(),
            path(&self.ca),
            "--tls-auth-clients".into(),
            "no".into(),
        ]
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run `openssl` (scripts/test installs it)");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

impl Certificates {
    /// A fresh CA and server certificate.
    pub fn generate() -> Certificates {
        let dir = tempfile::tempdir().expect("a temp dir for certificates");
        let d = dir.path();
        let key =
            |name: &str| ["-newkey", "rsa:2048", "-nodes", "-keyout", name].map(str::to_owned);
        let ca_key = key("ca.key");
        let mut ca = vec!["req", "-x509"];
        ca.extend(ca_key.iter().map(String::as_str));
        ca.extend([
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=redis-patterns test CA",
        ]);
        openssl(d, &ca);
        let server_key = key("server.key");
        let mut csr = vec!["req"];
        csr.extend(server_key.iter().map(String::as_str));
        csr.extend(["-out", "server.csr", "-subj", "/CN=localhost"]);
        openssl(d, &csr);
        std::fs::write(
            d.join("ext.cnf"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
        )
        .unwrap();
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.crt",
                "-days",
                "2",
                "-extfile",
                "ext.cnf",
            ],
        );
        Certificates { dir }
    }

    pub fn server_files(&self) -> ServerFiles {
        let d = self.dir.path();
        ServerFiles {
            cert: d.join("server.crt"),
            key: d.join("server.key"),
            ca: d.join("ca.crt"),
        }
    }

    /// The CA's certificate, PEM.
    pub fn ca_pem(&self) -> Vec<u8> {
        std::fs::read(self.dir.path().join("ca.crt")).expect("read the CA certificate")
    }
}
