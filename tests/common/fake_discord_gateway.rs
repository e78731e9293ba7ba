//! A fake Discord gateway (websocket) for integration tests: HELLO, then READY once the
//! client identifies, then whatever dispatches the test sends, numbered as Discord numbers
//! them. Point [`FakeDiscord::serve_gateway`](super::fake_discord::FakeDiscord) at its URL
//! so `GET /gateway/bot` names it.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::Message;

use super::fake_discord::BOT;

#[derive(Clone)]
pub struct FakeGateway {
    /// `ws://127.0.0.1:PORT`.
    pub url: String,
    /// The `d` of every IDENTIFY received.
    identified: Arc<Mutex<Vec<Value>>>,
    dispatches: broadcast::Sender<(String, Value)>,
}

impl FakeGateway {
    pub async fn start() -> FakeGateway {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("ws://{}", listener.local_addr().expect("addr"));
        let (dispatches, _) = broadcast::channel(64);
        let gateway = FakeGateway {
            url,
            identified: Arc::default(),
            dispatches,
        };
        let serving = gateway.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let session = serving.clone();
                tokio::spawn(async move { session.session(stream).await });
            }
        });
        gateway
    }

    /// The IDENTIFY payloads received so far.
    pub fn identified(&self) -> Vec<Value> {
        self.identified.lock().unwrap().clone()
    }

    /// Sends `event` (e.g. `MESSAGE_REACTION_ADD`) with `d` to every identified session.
    pub fn dispatch(&self, event: &str, d: Value) {
        let _ = self.dispatches.send((event.to_string(), d));
    }

    async fn session(self, stream: tokio::net::TcpStream) {
        let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
            return;
        };
        let hello = json!({"op": 10, "d": {"heartbeat_interval": 45_000}, "s": null, "t": null});
        if ws.send(Message::text(hello.to_string())).await.is_err() {
            return;
        }
        let mut events = self.dispatches.subscribe();
        let mut seq = 0u64;
        loop {
            tokio::select! {
                incoming = ws.next() => {
                    let Some(Ok(Message::Text(text))) = incoming else { return };
                    let Ok(frame) = serde_json::from_str::<Value>(&text) else { continue };
                    let reply = match frame["op"].as_u64() {
                        Some(2) => {
                            self.identified.lock().unwrap().push(frame["d"].clone());
                            seq += 1;
                            json!({"op": 0, "s": seq, "t": "READY", "d": self.ready()})
                        }
                        Some(1) => json!({"op": 11, "d": null, "s": null, "t": null}),
                        _ => continue,
                    };
                    if ws.send(Message::text(reply.to_string())).await.is_err() {
                        return;
                    }
                }
                event = events.recv() => {
                    let Ok((t, d)) = event else { return };
                    seq += 1;
                    let frame = json!({"op": 0, "s": seq, "t": t, "d": d});
                    if ws.send(Message::text(frame.to_string())).await.is_err() {
                        return;
                    }
                }
            }
        }
    }

    fn ready(&self) -> Value {
        json!({
            "v": 10,
            "user": {"id": BOT, "username": "firebreak", "discriminator": "0", "avatar": null,
                     "bot": true, "verified": true, "mfa_enabled": false, "flags": 0,
                     "global_name": null},
            "guilds": [],
            "session_id": "fake-session",
            "resume_gateway_url": self.url,
            "shard": [0, 1],
            "application": {"id": "777777777777777777", "flags": 0}
        })
    }
}
