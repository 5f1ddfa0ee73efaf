// The /v1 API, called with the merchant's bearer token: the dashboard can do nothing the API would refuse.

const TOKEN_KEY = "shippy-webhooks.token";

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.detail || `The API answered ${status}`);
    this.status = status;
    this.errors = Array.isArray(body?.errors) ? body.errors : [];
  }
}

export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY),
  set: (value) => sessionStorage.setItem(TOKEN_KEY, value),
  forget: () => sessionStorage.removeItem(TOKEN_KEY),
};

let askForToken = async () => {
  throw new ApiError(401, { detail: "This API needs a token" });
};

/** Who asks for a token on a 401: resolves once a new one is stored. */
export function onUnauthorized(ask) {
  askForToken = ask;
}

/** Calls the API; a 401 asks for a token and tries again with it. Answers the parsed JSON body. */
export async function call(method, path, body) {
  for (;;) {
    const headers = { accept: "application/json" };
    const sent = token.get();
    if (sent) headers.authorization = `Bearer ${sent}`;
    if (body !== undefined) headers["content-type"] = "application/json";
    const response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (response.status === 401) {
      await askForToken(sent ? "That token was refused. Enter a valid token." : null);
      continue;
    }
    const data = response.status === 204 ? null : await response.json().catch(() => null);
    if (!response.ok) throw new ApiError(response.status, data);
    return data;
  }
}

/** Delivery ids hold slashes ("delivery/evt-1/ep_x"): they stay path segments, each one encoded. */
export function deliveryPath(id) {
  return `/v1/deliveries/${id.split("/").map(encodeURIComponent).join("/")}`;
}

export function endpointPath(id) {
  return `/v1/endpoints/${encodeURIComponent(id)}`;
}
