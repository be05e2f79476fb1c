//! `quai token`: the partner API's bearer tokens (create, list, revoke).
//!
//! `create` prints the secret once (stdout, alone on its line, or in the
//! JSON); the spool keeps its SHA-256 only (`tokens`). A token is for a
//! configured partner; `revoke` takes effect at the next request.

use serde_json::json;

use crate::app::App;
use crate::text::printable;

/// `quai token create --partner P [--name N] [--json]`.
pub async fn create(
    app: &App,
    partner: &str,
    name: Option<&str>,
    json: bool,
) -> anyhow::Result<i32> {
    if app.config().partner(partner).is_none() {
        anyhow::bail!(
            "partner {:?} is not configured: add a [[partner]] with this id first",
            printable(partner)
        );
    }
    if let Some(n) = name {
        if n.chars().count() > 200 || n.chars().any(char::is_control) {
            anyhow::bail!("a token name has at most 200 characters and no control characters");
        }
    }
    let secret = crate::tokens::new_secret()?;
    let id = app
        .spool
        .create_api_token(partner, name, &crate::tokens::secret_hash(&secret))
        .await?;
    if json {
        println!(
            "{}",
            json!({ "id": id, "partner": partner, "name": name, "token": secret })
        );
    } else {
        eprintln!(
            "token {id} for partner {} created; it is shown only now:",
            printable(partner)
        );
        println!("{secret}");
    }
    Ok(0)
}

/// `quai token list [--json]` (never a secret).
pub async fn list(app: &App, json: bool) -> anyhow::Result<i32> {
    let tokens = app.spool.list_api_tokens().await?;
    if json {
        println!("{}", serde_json::to_string(&tokens)?);
        return Ok(0);
    }
    if tokens.is_empty() {
        println!("no partner API tokens");
        return Ok(0);
    }
    println!(
        "{:>5}  {:<20}  {:<20}  {:<25}  state",
        "id", "partner", "name", "created"
    );
    for t in &tokens {
        println!(
            "{:>5}  {:<20}  {:<20}  {:<25}  {}",
            t.id,
            printable(&t.partner),
            printable(t.name.as_deref().unwrap_or("-")),
            t.created_at.format("%Y-%m-%d %H:%M:%S UTC"),
            match t.revoked_at {
                Some(at) => format!("revoked {}", at.format("%Y-%m-%d %H:%M:%S UTC")),
                None => "active".into(),
            }
        );
    }
    Ok(0)
}

/// `quai token revoke ID`: exit 1 when there is no such live token.
pub async fn revoke(app: &App, id: i64) -> anyhow::Result<i32> {
    if app.spool.revoke_api_token(id).await? {
        println!("token {id} revoked");
        Ok(0)
    } else {
        eprintln!("no active token {id}");
        Ok(1)
    }
}
