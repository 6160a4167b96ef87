//! Logins with `tower-sessions`, stored by redis-patterns: `POST /login/{user}` (with the demo
//! password in an `x-password` header) starts a session under a new id, `GET /me` answers only
//! within one, `POST /logout` ends it.
//!
//! ```sh
//! cargo run --example axum_sessions --features redis-patterns/tower-sessions   # REDIS_URL, or mem://
//! curl -i -c jar -X POST -H 'x-password: let-me-in' http://127.0.0.1:3000/login/alice
//! curl -i -b jar http://127.0.0.1:3000/me
//! curl -i -b jar -c jar -X POST http://127.0.0.1:3000/logout
//! ```

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use redis_patterns::Client;
use redis_patterns::session::tower_sessions::RedisSessionStore;
use tower_sessions::cookie::time::Duration;
use tower_sessions::{Expiry, Session, SessionManagerLayer};

/// The demo's only password (a real service checks a password hash).
pub const PASSWORD: &str = "let-me-in";

/// The session's key for the signed-in user.
const USER: &str = "user";

/// The routes, with sessions stored through `client`.
pub fn app(client: Client) -> Router {
    let sessions = SessionManagerLayer::new(RedisSessionStore::new(client))
        // Plain HTTP on loopback for the demo: behind TLS, keep the default (`Secure`).
        .with_secure(false)
        .with_expiry(Expiry::OnInactivity(Duration::minutes(30)));
    Router::new()
        .route("/login/{user}", post(login))
        .route("/me", get(me))
        .route("/logout", post(logout))
        .layer(sessions)
}

async fn login(
    session: Session,
    Path(user): Path<String>,
    headers: HeaderMap,
) -> Result<String, StatusCode> {
    if headers.get("x-password").and_then(|v| v.to_str().ok()) != Some(PASSWORD) {
        return Err(StatusCode::UNAUTHORIZED);
    }
    // A new id at login, so that an id planted before it (session fixation) is worthless.
    session.cycle_id().await.map_err(internal)?;
    session.insert(USER, &user).await.map_err(internal)?;
    Ok(format!("welcome, {user}\n"))
}

async fn me(session: Session) -> Result<String, StatusCode> {
    match session.get::<String>(USER).await.map_err(internal)? {
        Some(user) => Ok(format!("you are {user}\n")),
        None => Err(StatusCode::UNAUTHORIZED),
    }
}

async fn logout(session: Session) -> Result<&'static str, StatusCode> {
    session.flush().await.map_err(internal)?;
    Ok("bye\n")
}

fn internal(error: tower_sessions::session::Error) -> StatusCode {
    tracing::error!(%error, "session store");
    StatusCode::INTERNAL_SERVER_ERROR
}

/// Serves the routes on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, client: Client) -> std::io::Result<()> {
    axum::serve(listener, app(client)).await
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let client = Client::from_env()?; // REDIS_URL, or mem:// when unset
    let bind = std::env::var("BIND").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let listener = tokio::net::TcpListener::bind(&bind).await?;
    let addr = listener.local_addr()?;
    println!("listening on http://{addr}");
    println!("  curl -i -c jar -X POST -H 'x-password: {PASSWORD}' http://{addr}/login/alice");
    println!("  curl -i -b jar http://{addr}/me");
    println!("  curl -i -b jar -c jar -X POST http://{addr}/logout");
    serve(listener, client).await?;
    Ok(())
}
