// The JSON API behind the page (documented at /docs). Every error answer is {"detail": "<field>: <one line>"}.

async function answer(response) {
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.detail || `${response.status} ${response.statusText}`);
  return body;
}

export const get = (path) => fetch(path).then(answer);

export const post = (path, body) =>
  fetch(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) })
    .then(answer);

export function upload(file) {
  const form = new FormData();
  form.append("file", file);
  return fetch("/api/upload", { method: "POST", body: form }).then(answer);
}

// Calls `send(value)` for the latest value only: while one request is out, newer values replace each other,
// and the last one is sent when it returns. Pointer moves and slider drags never queue up.
export function latest(send, onResult, onError) {
  let busy = false;
  let waiting = null;
  async function run(value) {
    busy = true;
    try {
      onResult(await send(value), value);
    } catch (error) {
      onError(error);
    }
    busy = false;
    if (waiting !== null) {
      const next = waiting;
      waiting = null;
      run(next);
    }
  }
  return (value) => (busy ? (waiting = value) : run(value));
}
