//! TLS to the database: rustls on the AWS SDK's own crypto provider, the certificate checked
//! against the CA bundle given (or the public web's roots) and the RDS endpoint's name, also
//! when the TCP connection goes through a tunnel to `localhost`.
//!
//! tokio-postgres takes any TLS implementation through two small traits; the adapter below is
//! ours rather than `tokio-postgres-rustls`, which brings a second crypto library (ring).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, TlsConnect, TlsStream};

use crate::{Error, TlsPolicy};

/// The CA certificates of the bundle, PEM, or an error naming the file.
pub(crate) fn bundle(policy: &TlsPolicy) -> Result<Option<Vec<CertificateDer<'static>>>, Error> {
    let Some(path) = &policy.ca_bundle else {
        return Ok(None);
    };
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| Error::CaBundle {
        path: shown.clone(),
        message: e.to_string(),
    })?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::CaBundle {
            path: shown.clone(),
            message: format!("not a PEM bundle: {e}"),
        })?;
    if certs.is_empty() {
        return Err(Error::CaBundle {
            path: shown,
            message: "no certificate in it".into(),
        });
    }
    Ok(Some(certs))
}

/// A client configuration trusting the bundle, or the public web's roots.
pub(crate) fn config(policy: &TlsPolicy) -> Result<Arc<ClientConfig>, Error> {
    let mut roots = RootCertStore::empty();
    match bundle(policy)? {
        Some(certs) => {
            let path = policy
                .ca_bundle
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            for cert in certs {
                roots.add(cert).map_err(|e| Error::CaBundle {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls {
            address: String::new(),
            message: e.to_string(),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// tokio-postgres's TLS handshake, checking the certificate against `name`.
pub(crate) struct PgTls {
    connector: tokio_rustls::TlsConnector,
    name: ServerName<'static>,
}

impl PgTls {
    pub(crate) fn new(policy: &TlsPolicy, endpoint: &str) -> Result<Self, Error> {
        let name = ServerName::try_from(endpoint.to_owned()).map_err(|e| Error::Tls {
            address: endpoint.to_owned(),
            message: format!("`{endpoint}` is not a host name: {e}"),
        })?;
        Ok(Self {
            connector: tokio_rustls::TlsConnector::from(config(policy)?),
            name,
        })
    }
}

type Handshake<S> = Pin<Box<dyn Future<Output = io::Result<PgTlsStream<S>>> + Send>>;

impl<S> TlsConnect<S> for PgTls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = PgTlsStream<S>;
    type Error = io::Error;
    type Future = Handshake<S>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let tls = self.connector.connect(self.name, stream).await?;
            Ok(PgTlsStream(tls))
        })
    }
}

pub(crate) struct PgTlsStream<S>(tokio_rustls::client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for PgTlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for PgTlsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream for PgTlsStream<S> {
    /// SCRAM without channel binding: the certificate check above is what binds the session.
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}
