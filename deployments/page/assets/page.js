(() => {
  "use strict";
  const spec = JSON.parse(document.getElementById("page-spec").textContent);
  const $ = (id) => document.getElementById(id);
  const base = spec.api.url ? spec.api.url.replace(/\/*$/, "/") : "./";
  const fields = new Map(spec.fields.map((field) => [field.name, field]));
  const NUMBER = /^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$/;
  const TOKEN_KEY = "loopml-token";

  // --- who may call the API ------------------------------------------------------------
  function token() {
    const input = $("token");
    return input ? input.value.trim() : "";
  }
  if (spec.api.auth === "jwt") {
    const input = $("token");
    const given = new URLSearchParams(location.hash.slice(1));
    const redirected = given.get("access_token") || given.get("id_token");
    if (redirected) {
      input.value = redirected;
      sessionStorage.setItem(TOKEN_KEY, redirected);
      history.replaceState(null, "", location.pathname + location.search);
    } else {
      input.value = sessionStorage.getItem(TOKEN_KEY) || "";
    }
    input.addEventListener("input", () => sessionStorage.setItem(TOKEN_KEY, token()));
  }

  function headers() {
    const sent = { "content-type": "application/json" };
    if (spec.api.auth === "jwt" && token()) sent.authorization = "Bearer " + token();
    return sent;
  }

  async function post(instances) {
    let response;
    try {
      response = await fetch(base + "predict", {
        method: "POST",
        headers: headers(),
        body: JSON.stringify({ instances }),
        credentials: "omit",
        cache: "no-store",
      });
    } catch (error) {
      return { status: 0, body: { error: "the API could not be reached (" + error.message + ")" } };
    }
    let body = {};
    try {
      body = await response.json();
    } catch (_) {
      body = {};
    }
    return { status: response.status, body };
  }

  function message(result) {
    const body = result.body || {};
    if (result.status === 401 || result.status === 403) {
      if (spec.api.auth === "jwt") {
        return "The API refused the access token (" + result.status + "): sign in again or paste a fresh token.";
      }
      if (spec.api.auth === "iam") {
        return "The API takes only SigV4-signed requests (" + result.status + "), which a browser cannot send: " +
          "browser users need an API deployed with MLOPS_API_AUTH=jwt.";
      }
    }
    return body.error || body.message || "the API answered " + result.status;
  }

  // --- the form --------------------------------------------------------------------------
  const form = $("predict-form");

  function valueOf(field, raw) {
    const text = String(raw).trim();
    if (text === "") return undefined;
    if (field.kind === "number" && NUMBER.test(text) && Number.isFinite(Number(text))) return Number(text);
    return text; // a number the API cannot read is sent as typed: its answer names the field
  }

  function labelOf(name) {
    return (fields.get(name) || { label: name }).label;
  }

  function listed(items) {
    if (items.length < 2) return items.join("");
    return items.slice(0, -1).join(", ") + " and " + items[items.length - 1];
  }

  function clearErrors() {
    for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
    for (const slot of form.querySelectorAll(".field .error")) {
      slot.textContent = "";
      slot.hidden = true;
    }
    $("form-error").hidden = true;
  }

  function showFieldError(name, text) {
    const input = $("f-" + name);
    const slot = $("e-" + name);
    if (!input || !slot) return false;
    const folded = input.closest("details");
    if (folded) folded.open = true;
    input.setAttribute("aria-invalid", "true");
    slot.textContent = text;
    slot.hidden = false;
    input.focus();
    return true;
  }

  function showFormError(text) {
    const slot = $("form-error");
    slot.textContent = text;
    slot.hidden = false;
  }

  function formatted(value) {
    if (typeof value !== "number") return String(value);
    return value.toLocaleString("en-US", { maximumFractionDigits: Math.abs(value) >= 100 ? 0 : 4 });
  }

  function inputValue(value) {
    // as the hints write numbers: years and small counts without a separator
    return typeof value === "number" && Math.abs(value) < 10000 ? String(value) : formatted(value);
  }

  function notes(imputed, unknown, outside, instance) {
    const parts = [];
    if (outside.length) {
      const named = outside.map((name) => labelOf(name) + " " + inputValue(instance[name]));
      parts.push("Outside the range the model was trained on: " + listed(named) +
        ". The answer is an extrapolation; treat it as a rough guess.");
    }
    if (imputed.length) {
      parts.push("The model filled in " + imputed.length + (imputed.length === 1 ? " input" : " inputs") +
        " that " + (imputed.length === 1 ? "was" : "were") + " left empty: " + listed(imputed.map(labelOf)) + ".");
    }
    if (unknown.length) {
      const named = unknown.map((name) => labelOf(name) + " \u201c" + instance[name] + "\u201d");
      parts.push("The model never saw " + listed(named) + " in training and ignored " +
        (unknown.length === 1 ? "it" : "them") + ".");
    }
    if (!parts.length) {
      parts.push("Every input was given and lies within what the model saw in training.");
    }
    return parts.join(" ");
  }

  function showAnswer(body, instance) {
    const value = body.predictions[0];
    $("prediction").textContent = spec.model.targetLabel + ": " + formatted(value);
    $("prediction").dataset.value = String(value);
    const table = $("probabilities");
    table.replaceChildren();
    if (body.probabilities) {
      const head = table.insertRow();
      for (const title of ["Class", "Probability"]) {
        const cell = document.createElement("th");
        cell.scope = "col";
        cell.textContent = title;
        head.appendChild(cell);
      }
      for (const [name, probability] of Object.entries(body.probabilities[0])) {
        const row = table.insertRow();
        row.insertCell().textContent = name;
        row.insertCell().textContent = (100 * probability).toFixed(1) + "%";
      }
    }
    table.hidden = !body.probabilities;
    const first = (name) => (body[name] || [[]])[0] || [];
    const outside = first("outside_training");
    $("notes").textContent = notes(first("imputed_fields"), first("unknown_categories"), outside, instance);
    $("notes").classList.toggle("caution", outside.length > 0);
    let meta = "Model " + body.model_name + " version " + body.model_version + " \u00b7 request id " + body.request_id;
    if (spec.model.version && String(body.model_version) !== spec.model.version) {
      meta += " \u00b7 this page was made for version " + spec.model.version + ": make it again for the inputs of the new one";
    }
    $("answer-meta").textContent = meta;
    $("answer").hidden = false;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors();
    const instance = {};
    for (const field of spec.fields) {
      const value = valueOf(field, $("f-" + field.name).value);
      if (value !== undefined) instance[field.name] = value;
    }
    const button = $("predict");
    button.disabled = true;
    const result = await post([instance]);
    button.disabled = false;
    if (result.status !== 200) {
      $("answer").hidden = true;
      const text = message(result);
      if (!(result.body && result.body.field && showFieldError(result.body.field, text))) showFormError(text);
      return;
    }
    showAnswer(result.body, instance);
  });
  form.addEventListener("reset", () => {
    clearErrors();
    $("answer").hidden = true;
  });

  // --- score a file ----------------------------------------------------------------------
  function parseCsv(text) {
    const records = [];
    let cells = [];
    let cell = "";
    let quoted = false;
    let line = 1;
    let start = 1;
    let touched = false;
    for (let index = 0; index < text.length; index += 1) {
      const char = text[index];
      if (quoted) {
        if (char === '"' && text[index + 1] === '"') {
          cell += '"';
          index += 1;
        } else if (char === '"') {
          quoted = false;
        } else {
          if (char === "\n") line += 1;
          cell += char;
        }
      } else if (char === '"') {
        quoted = true;
        touched = true;
      } else if (char === ",") {
        cells.push(cell);
        cell = "";
        touched = true;
      } else if (char === "\n" || char === "\r") {
        if (char === "\r" && text[index + 1] === "\n") index += 1;
        if (touched || cell !== "") records.push({ line: start, cells: [...cells, cell] });
        cells = [];
        cell = "";
        touched = false;
        line += 1;
        start = line;
      } else {
        cell += char;
        touched = true;
      }
    }
    if (touched || cell !== "") records.push({ line: start, cells: [...cells, cell] });
    return records;
  }

  // The column names the API expects, made from a CSV header as training made them.
  function normalised(name) {
    let text = String(name).normalize("NFKD").replace(/[^\x00-\x7f]/g, "");
    text = text.replace(/([a-z])([A-Z])/g, "$1_$2").replace(/([A-Z]+)([A-Z][a-z])/g, "$1_$2");
    text = text.replace(/[^0-9A-Za-z]+/g, "_").replace(/^_+|_+$/g, "").toLowerCase();
    return /^\d/.test(text) ? "f_" + text : text;
  }

  function csvCell(value) {
    const text = value === undefined || value === null ? "" : String(value);
    return /[",\r\n]/.test(text) ? '"' + text.replace(/"/g, '""') + '"' : text;
  }

  const sleep = (milliseconds) => new Promise((resolve) => setTimeout(resolve, milliseconds));
  const encoder = new TextEncoder();

  async function scoreBatch(batch, results, progress) {
    let pending = batch.slice();
    let retries = 0;
    while (pending.length) {
      const body = JSON.stringify({ instances: pending.map((item) => item.instance) });
      if (encoder.encode(body).length > spec.api.maxBytes && pending.length > 1) {
        const half = Math.ceil(pending.length / 2);
        await scoreBatch(pending.slice(0, half), results, progress);
        pending = pending.slice(half);
        continue;
      }
      const result = await post(pending.map((item) => item.instance));
      progress.requests += 1;
      if (result.status === 200) {
        pending.forEach((item, row) => {
          results.set(item.line, {
            prediction: result.body.predictions[row],
            probabilities: result.body.probabilities ? result.body.probabilities[row] : null,
            imputed: (result.body.imputed_fields || [])[row] || [],
            unknown: (result.body.unknown_categories || [])[row] || [],
            outside: (result.body.outside_training || [])[row] || [],
            version: result.body.model_version,
            requestId: result.body.request_id,
          });
        });
        return;
      }
      const index = result.body ? result.body.instance : undefined;
      if (result.status === 400 && Number.isInteger(index) && index >= 0 && index < pending.length) {
        const text = message(result).replace(/^instance \d+: /, "");
        results.set(pending[index].line, { error: text });
        pending.splice(index, 1);
        continue;
      }
      if (result.status === 413 && pending.length > 1) {
        const half = Math.ceil(pending.length / 2);
        await scoreBatch(pending.slice(0, half), results, progress);
        pending = pending.slice(half);
        continue;
      }
      if ((result.status === 0 || result.status === 429 || result.status >= 500) && retries < 3) {
        retries += 1;
        await sleep(400 * 2 ** retries);
        continue;
      }
      if (result.status === 401 || result.status === 403) throw new Error(message(result));
      for (const item of pending) results.set(item.line, { error: message(result) });
      return;
    }
  }

  function outputCsv(items, results) {
    const classes = spec.model.classes;
    const header = ["line", "prediction", ...classes.map((name) => "probability_" + name),
      "imputed_fields", "unknown_categories", "outside_training", "model_version", "request_id", "error"];
    const lines = [header.map(csvCell).join(",")];
    for (const item of items) {
      const answer = results.get(item.line) || { error: "not scored" };
      const probabilities = classes.map((name) => (answer.probabilities ? answer.probabilities[name] : ""));
      lines.push([item.line, answer.prediction, ...probabilities, (answer.imputed || []).join(" "),
        (answer.unknown || []).join(" "), (answer.outside || []).join(" "), answer.version, answer.requestId,
        answer.error].map(csvCell).join(","));
    }
    return lines.join("\r\n") + "\r\n";
  }

  const fileForm = $("file-form");
  let download = null;
  fileForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const status = $("file-status");
    const link = $("download");
    link.hidden = true;
    if (download) URL.revokeObjectURL(download);
    const file = $("csv").files[0];
    if (!file) {
      status.textContent = "Choose a CSV file first.";
      return;
    }
    const records = parseCsv((await file.text()).replace(/^\ufeff/, ""));
    if (records.length < 2) {
      status.textContent = file.name + " has no rows to score (the first line names the columns).";
      return;
    }
    const [head, ...rows] = records;
    const columns = head.cells.map((name) => normalised(name.trim()));
    const ignored = head.cells.filter((_, index) => !fields.has(columns[index]));
    if (ignored.length === head.cells.length) {
      status.textContent = "None of the columns of " + file.name + " is an input of the model; expected names such as " +
        listed(spec.fields.slice(0, 3).map((field) => field.name)) + ".";
      return;
    }
    const items = rows.map((row) => {
      const instance = {};
      columns.forEach((column, index) => {
        const field = fields.get(column);
        const value = field ? valueOf(field, row.cells[index] || "") : undefined;
        if (value !== undefined) instance[column] = value;
      });
      return { line: row.line, instance };
    });
    const button = $("score");
    button.disabled = true;
    const results = new Map();
    const progress = { requests: 0 };
    try {
      for (let start = 0; start < items.length; start += spec.api.maxRows) {
        status.textContent = "Scoring rows " + (start + 1) + " to " + Math.min(start + spec.api.maxRows, items.length) +
          " of " + items.length + "\u2026";
        await scoreBatch(items.slice(start, start + spec.api.maxRows), results, progress);
      }
    } catch (error) {
      status.textContent = error.message;
      button.disabled = false;
      return;
    }
    button.disabled = false;
    const failed = items.filter((item) => results.get(item.line).error);
    let summary = "Scored " + (items.length - failed.length) + " of " + items.length + " rows of " + file.name +
      " in " + progress.requests + (progress.requests === 1 ? " request" : " requests") + ".";
    if (failed.length) {
      const first = failed.slice(0, 5).map((item) => "line " + item.line + ": " + results.get(item.line).error);
      summary += " " + failed.length + " failed: " + first.join("; ") + (failed.length > 5 ? "; \u2026" : "") + ".";
    }
    if (ignored.length) summary += " Columns that are no model input were left out: " + listed(ignored) + ".";
    status.textContent = summary;
    download = URL.createObjectURL(new Blob([outputCsv(items, results)], { type: "text/csv" }));
    link.href = download;
    link.download = file.name.replace(/\.[^.]*$/, "") + "-predictions.csv";
    link.textContent = "Download " + link.download + " (" + items.length + " rows)";
    link.hidden = false;
  });
})();
