// A platform portal in the browser: logs in with auth0-spa-js (loginWithRedirect against the
// keystead control plane), handles the redirect callback, and gets organization-scoped tokens
// silently (prompt=none + response_mode=web_message in a hidden iframe) with one Auth0Client per
// organization, each with its own cache. The test drives it through `window.portal`.
(function () {
  'use strict';
  const cfg = window.PORTAL_CONFIG;

  // A cache of our own (auth0-spa-js's ICache): cache keys name client, audience and scope but
  // not the organization, so every organization gets its own client and its own cache.
  class MapCache {
    constructor() { this.entries = new Map(); }
    get(key) { return this.entries.get(key); }
    set(key, entry) { this.entries.set(key, entry); }
    remove(key) { this.entries.delete(key); }
    allKeys() { return [...this.entries.keys()]; }
  }

  function options(extra) {
    return Object.assign({
      domain: cfg.domain,
      clientId: cfg.clientId,
      authorizeTimeoutInSeconds: 15,
      httpTimeoutInSeconds: 15,
      authorizationParams: {
        redirect_uri: location.origin + '/callback',
        audience: cfg.audience,
        scope: 'openid profile email',
      },
    }, extra);
  }

  function describe(e) {
    return {
      error: String((e && (e.error || e.message)) || e),
      description: e && e.error_description,
    };
  }

  const main = new auth0.Auth0Client(options({ cacheLocation: 'memory', useRefreshTokens: true }));
  const orgClients = new Map();
  const portal = { ready: false, login: null, main };
  window.portal = portal;

  portal.loginWithRedirect = function () {
    return main.loginWithRedirect({ appState: { returnTo: '/' } });
  };

  /** An organization token from the client of that organization (created on first use). */
  portal.orgToken = async function (organization) {
    let entry = orgClients.get(organization);
    if (!entry) {
      const cache = new MapCache();
      entry = { cache, client: new auth0.Auth0Client(options({ cache })) };
      orgClients.set(organization, entry);
    }
    try {
      const r = await entry.client.getTokenSilently({
        authorizationParams: { organization }, detailedResponse: true,
      });
      const claims = await entry.client.getIdTokenClaims();
      return { ok: true, access_token: r.access_token, id_token: r.id_token, claims,
               cacheKeys: entry.cache.allKeys() };
    } catch (e) {
      return Object.assign({ ok: false }, describe(e));
    }
  };

  portal.cacheKeys = function (organization) {
    const entry = orgClients.get(organization);
    return entry ? entry.cache.allKeys() : null;
  };

  async function start() {
    const params = new URLSearchParams(location.search);
    try {
      if (location.pathname === '/callback' && (params.has('code') || params.has('error'))) {
        const result = await main.handleRedirectCallback();
        history.replaceState(null, '', result.appState && result.appState.returnTo || '/');
        const token = await main.getTokenSilently({ detailedResponse: true });
        portal.login = { ok: true, appState: result.appState, token,
                         user: await main.getUser(), authenticated: await main.isAuthenticated() };
      }
    } catch (e) {
      portal.login = Object.assign({ ok: false }, describe(e));
    }
    const button = document.getElementById('login');
    button.addEventListener('click', () => portal.loginWithRedirect());
    button.disabled = false;
    document.getElementById('status').textContent = JSON.stringify(portal.login);
    portal.ready = true;
  }

  start();
})();
