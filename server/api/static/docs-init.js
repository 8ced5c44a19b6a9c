// Interactive API docs: the spec is served by this server; nothing is loaded from elsewhere.
// With a browser sign-in, "Try it out" sends the session's cookie (same origin) and its CSRF
// token, so the docs work without pasting a key; without one, Authorize takes an API key.
(function () {
  let csrf = null;
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    persistAuthorization: false,
    validatorUrl: null,
    requestInterceptor: function (req) {
      const own = req.url.indexOf(location.origin + "/") === 0 || req.url.charAt(0) === "/";
      if (csrf && own) req.headers["X-CSRF-Token"] = csrf;
      return req;
    },
  });
  const bar = document.getElementById("signin-bar");
  fetch("/auth/session", { credentials: "same-origin" }).then(function (r) {
    return r.ok ? r.json() : { sign_in: false };
  }).then(function (s) {
    if (!s.sign_in) return;
    csrf = s.csrf_token;
    const link = document.createElement("a");
    if (s.who) {
      bar.textContent = "Signed in as " + s.who + ": Try it out uses your sign-in. ";
      link.href = "/auth/logout";
      link.id = "sign-out-link";
      link.textContent = "Sign out";
    } else {
      bar.textContent = "Sign in to try the API with your organisation's account, or Authorize " +
        "with an API key. ";
      link.href = "/auth/login?next=/docs";
      link.id = "sign-in";
      link.textContent = "Sign in";
    }
    bar.appendChild(link);
    bar.hidden = false;
  }).catch(function () { /* the docs work without it */ });
})();
