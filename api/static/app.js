// The merchant dashboard: screens in the URL's fragment, data from the /v1 API.

import { onUnauthorized, token } from "./api.js";
import { deliveryDetail } from "./delivery.js";
import { askForToken } from "./dialogs.js";
import { endpointList } from "./endpoints.js";
import { endpointForm } from "./form.js";
import { logList } from "./logs.js";
import { render, route } from "./router.js";

const forget = document.getElementById("forget-token");

function showForget() {
  forget.hidden = !token.get();
}

onUnauthorized(async (problem) => {
  await askForToken(problem);
  showForget();
});

forget.addEventListener("click", () => {
  token.forget();
  showForget();
  render();
});

route(/^\/endpoints$/, endpointList);
route(/^\/endpoints\/new$/, () => endpointForm(null));
route(/^\/endpoints\/([^/]+)$/, (ctx) => endpointForm(ctx.args[0]));
route(/^\/logs$/, logList);
route(/^\/deliveries\/(.+)$/, deliveryDetail);

window.addEventListener("hashchange", render);
showForget();
render();
