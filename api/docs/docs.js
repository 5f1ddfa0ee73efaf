// Swagger UI on this API's /openapi.json. A file of its own, not an inline script: the page's
// Content-Security-Policy runs only this origin's files.
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  // No badge from validator.swagger.io: the page asks nothing of any other origin.
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
});
