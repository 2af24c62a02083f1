//! `/tokens`: a signed-in user's API tokens — issue one (its secret shown
//! once), see when each was last used, revoke. Admins see everyone's.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use plinth_app::identity::{parse_lifetime, TokenInfo, TokenRequest, TokenSubject, SCOPES};
use plinth_app::Caller;

use super::super::view::When;
use super::super::{error_page, page};
use crate::error::ApiError;
use crate::AppState;

/// The tokens page.
#[derive(serde::Serialize)]
struct TokensView {
    title: &'static str,
    /// Every token the caller may see, newest first.
    tokens: Vec<TokenRow>,
    /// The scopes the form offers.
    scopes: Vec<&'static str>,
    /// A token just issued: its secret, shown this once.
    issued: Option<Issued>,
    problem: Option<String>,
    all: bool,
}

#[derive(serde::Serialize)]
struct Issued {
    id: String,
    secret: String,
}

#[derive(serde::Serialize)]
struct TokenRow {
    id: String,
    name: String,
    subject: String,
    scopes: String,
    created: When,
    /// `None`: never.
    expires: Option<When>,
    /// `None`: never.
    last_used: Option<When>,
    state: &'static str,
}

impl From<&TokenInfo> for TokenRow {
    fn from(t: &TokenInfo) -> TokenRow {
        let now = time::OffsetDateTime::now_utc();
        TokenRow {
            id: t.id.clone(),
            name: t.name.clone(),
            subject: format!("{}:{}", t.subject_kind.as_str(), t.subject),
            scopes: t.scopes.join(", "),
            created: When::at(t.created_at),
            expires: t.expires_at.map(When::at),
            last_used: t.last_used_at.map(When::at),
            state: match (t.revoked_at, t.expires_at) {
                (Some(_), _) => "revoked",
                (None, Some(at)) if at <= now => "expired",
                _ => "active",
            },
        }
    }
}

async fn render(
    app: &AppState,
    caller: &Caller,
    status: StatusCode,
    issued: Option<Issued>,
    problem: Option<String>,
) -> Response {
    let all = caller.admin;
    let tokens = match app.platform.tokens().list(caller, all).await {
        Ok(tokens) => tokens,
        Err(error) => return error_page(error.into()),
    };
    let view = TokensView {
        title: "API tokens",
        tokens: tokens.iter().map(TokenRow::from).collect(),
        scopes: SCOPES.to_vec(),
        issued,
        problem,
        all,
    };
    page(status, "tokens.html", &view)
}

pub(in crate::portal) async fn tokens_page(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Response {
    render(&app, &caller, StatusCode::OK, None, None).await
}

/// The form: a name, scopes (checkboxes, repeated `scope` fields) and a
/// lifetime.
#[derive(Debug, Default)]
struct NewTokenForm {
    name: String,
    scope: Vec<String>,
    expires_in: String,
}

impl NewTokenForm {
    /// Reads `application/x-www-form-urlencoded` (repeated `scope` kept).
    fn parse(body: &[u8]) -> NewTokenForm {
        let mut form = NewTokenForm::default();
        for (key, value) in form_urlencoded::parse(body) {
            match key.as_ref() {
                "name" => form.name = value.chars().take(1000).collect(),
                "scope" if form.scope.len() < 16 => form.scope.push(value.into_owned()),
                "expires_in" => form.expires_in = value.chars().take(32).collect(),
                _ => {}
            }
        }
        form
    }
}

pub(in crate::portal) async fn create_token(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: axum::body::Bytes,
) -> Response {
    let form = NewTokenForm::parse(&body);
    let Some(user) = caller.user_ref().map(str::to_string) else {
        return error_page(ApiError::unauthorized("sign in as a user to issue tokens"));
    };
    let lifetime = match form.expires_in.trim() {
        "" => None,
        text => match parse_lifetime(text) {
            Ok(lifetime) => Some(lifetime),
            Err(problem) => return render(&app, &caller, StatusCode::BAD_REQUEST, None, Some(problem)).await,
        },
    };
    let request = TokenRequest { name: form.name, subject: TokenSubject::User(user), scopes: form.scope, lifetime };
    match app.platform.tokens().create(&caller, request).await {
        Ok(issued) => {
            let issued = Issued { id: issued.token.id, secret: issued.secret };
            render(&app, &caller, StatusCode::CREATED, Some(issued), None).await
        }
        Err(error) => {
            let status = crate::error::status_of(error.kind).0;
            render(&app, &caller, status, None, Some(error.message)).await
        }
    }
}

pub(in crate::portal) async fn revoke_token(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Response {
    match app.platform.tokens().revoke(&caller, id.get(..64).unwrap_or(&id)).await {
        Ok(_) => Redirect::to("/tokens").into_response(),
        Err(error) => error_page(error.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn token_times_are_relative_with_the_exact_time_on_hover() {
        let now = datetime!(2026-12-05 12:00:00 UTC);
        let row = |expires: Option<When>, last_used: Option<When>| TokenRow {
            id: "t1".into(),
            name: "ci".into(),
            subject: "user:default/alice".into(),
            scopes: "read".into(),
            created: When::between(datetime!(2026-12-05 11:57:00 UTC), now),
            expires,
            last_used,
            state: "active",
        };
        let view = TokensView {
            title: "API tokens",
            tokens: vec![
                row(Some(When::between(datetime!(2027-01-04 12:00:00 UTC), now)), None),
                row(None, Some(When::between(datetime!(2026-12-05 10:00:00 UTC), now))),
            ],
            scopes: SCOPES.to_vec(),
            issued: None,
            problem: None,
            all: false,
        };
        let chrome = crate::portal::Chrome {
            view: &view,
            asset_version: "test",
            nav: "",
            header_q: "",
            session: Default::default(),
        };
        let html = crate::portal::templates()
            .get_template("tokens.html")
            .and_then(|t| t.render(minijinja::Value::from_serialize(&chrome)))
            .expect("tokens.html renders");
        for expected in [
            r#"<td><time datetime="2026-12-05T11:57:00Z" title="2026-12-05 11:57:00 UTC">3 min ago</time></td>"#,
            r#"<td><time datetime="2027-01-04T12:00:00Z" title="2027-01-04 12:00:00 UTC">2027-01-04</time></td><td>never</td>"#,
            r#"<td>never</td><td><time datetime="2026-12-05T10:00:00Z" title="2026-12-05 10:00:00 UTC">2 h ago</time></td>"#,
        ] {
            assert!(html.contains(expected), "{expected} in {html}");
        }
    }
}
