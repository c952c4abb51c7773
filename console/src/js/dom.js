// Small DOM helpers: every element is built with createElement and textContent (never innerHTML),
// and no inline style or event-handler attribute is ever set (the CSP forbids them).

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export function field(label, control, hint) {
  return h("label", { class: "field" }, h("span", { class: "field-label", text: label }), control,
    hint ? h("span", { class: "field-hint", text: hint }) : null);
}

export function select(name, options, value) {
  const el = h("select", { name, id: `f-${name}` });
  for (const [optValue, optLabel] of options) {
    const opt = h("option", { value: optValue, text: optLabel });
    if (String(optValue) === String(value ?? "")) opt.selected = true;
    el.append(opt);
  }
  return el;
}

export function notice(text, kind = "info") {
  return h("p", { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status", text });
}

// A table whose cells carry their column's label (data-label), so narrow screens can show each
// row as a card (console.css).
export function table(columns, rows, { className = "", empty = "" } = {}) {
  const head = h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col", class: c.num ? "num" : null, text: c.label }))));
  const body = h("tbody");
  for (const row of rows) {
    body.append(h("tr", row.__attrs || {}, columns.map((c) => {
      const value = c.cell(row);
      return h("td", { "data-label": c.label, class: c.num ? "num" : null }, value instanceof Node ? value : String(value ?? "—"));
    })));
  }
  if (!rows.length && empty) {
    body.append(h("tr", { class: "empty" }, h("td", { colspan: String(columns.length), text: empty })));
  }
  return h("div", { class: "table-wrap" }, h("table", { class: `data ${className}` }, head, body));
}
