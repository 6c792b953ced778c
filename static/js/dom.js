// The few DOM writes the board makes: text only through textContent, and a
// text or attribute written only when it changes.

export function el(tag, cls) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  return e;
}

export function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

export function setAttr(node, name, value) {
  if (value == null || value === false) {
    if (node.hasAttribute(name)) node.removeAttribute(name);
  } else if (node.getAttribute(name) !== String(value)) {
    node.setAttribute(name, value);
  }
}

export const hide = (item) => { item.el.hidden = true; };

// A tile or row gone from the state: out of the DOM and out of every set that tracks it.
export function forget(items, key, shown, seen) {
  const item = items.get(key);
  item.shown = false;
  item.seen = false;
  item.el.remove();
  items.delete(key);
  shown.delete(item);
  seen.delete(item);
}
