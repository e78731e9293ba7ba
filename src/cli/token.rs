//! `firebreak token create | list | revoke`: API tokens for the HTTP API, managed from the
//! command line by people with the widest permission.

use std::process::ExitCode;

use chrono::Utc;

use super::run::user_error;
use super::{TokenCommand, identity, render};
use crate::app::App;
use crate::auth::{Scopes, check_token_name, new_token, token_hash};
use crate::incident::permissions::Action;

/// `firebreak token create | list | revoke`. Creating and revoking need the
/// `unfreeze_all` permission (there is no separate admin list; it is the widest one).
pub(super) async fn token(app: &App, cmd: TokenCommand) -> anyhow::Result<ExitCode> {
    let me = identity::actor();
    let admin = app.config.permissions.allows(&me, Action::UnfreezeAll);
    match cmd {
        TokenCommand::List { json } => {
            let tokens = app.store.active_tokens().await?;
            if json {
                println!("{}", render::tokens_json(&tokens)?);
            } else {
                print!("{}", render::tokens_table(&tokens));
            }
        }
        TokenCommand::Create { .. } | TokenCommand::Revoke { .. } if !admin => {
            return Ok(user_error(&format!(
                "You are not allowed to manage API tokens ({} may not); ask someone listed under [permissions] unfreeze_all.",
                me.identity()
            )));
        }
        TokenCommand::Create { name, scope } => {
            if let Err(e) = check_token_name(&name) {
                return Ok(user_error(&e));
            }
            let scopes = match Scopes::parse(&scope) {
                Ok(s) => s,
                Err(e) => return Ok(user_error(&e.to_string())),
            };
            let token = new_token();
            let hash = token_hash(&token);
            let by = me.identity();
            let new = crate::store::NewToken {
                name: &name,
                hash: &hash,
                scopes: &scopes,
                created_by: by.as_str(),
                at: Utc::now(),
            };
            if !app.store.create_token(&new).await? {
                return Ok(user_error(&format!(
                    "A token called \"{name}\" already exists; revoke it first or pick another name."
                )));
            }
            eprintln!(
                "Created the token \"{name}\" with the scopes {scopes}. It is shown only now; keep it somewhere safe:"
            );
            println!("{token}");
        }
        TokenCommand::Revoke { name } => {
            if !app.store.revoke_token(&name, Utc::now()).await? {
                return Ok(user_error(&format!(
                    "There is no token called \"{name}\"; see `firebreak token list`."
                )));
            }
            println!("Revoked the token \"{name}\"; requests with it are refused from now on.");
        }
    }
    Ok(ExitCode::SUCCESS)
}
