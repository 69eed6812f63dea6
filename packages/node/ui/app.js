// The Shoal web view: the swarm as people draw it on a whiteboard — nodes as columns, their tasks as
// cards coloured by state, the services with their replica counts — live from the manager's
// server-sent events (/events). Plain ES module, no build step, nothing fetched from elsewhere.
// Every text goes in with textContent (names come from users).

/** @typedef {{id:string,hostname:string,role:string,leader:boolean,reachability?:string,availability:string,status:string,message:string,addr:string,engine:string,dataplane:string,cpus:number,memoryBytes:number}} ViewNode */
/** @typedef {{id:string,name:string,image:string,mode:string,replicas:number|null,running:number,ports:string[],update?:string,hue:number}} ViewService */
/** @typedef {{id:string,serviceId:string,service:string,slot:number,nodeId:string,state:string,desiredState:string,category:string,message:string,since:string}} ViewTask */
/** @typedef {{error?:string,leaderId:string,nodes:ViewNode[],services:ViewService[],tasks:ViewTask[]}} ClusterView */

const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

/** Creates an element with classes, attributes and children (strings become text nodes). */
function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = String(v);
    else if (k === 'text') e.textContent = String(v);
    else if (k.startsWith('data-')) e.setAttribute(k, String(v));
    else e.setAttribute(k, String(v));
  }
  for (const c of children) if (c !== undefined && c !== null && c !== false) e.append(typeof c === 'string' ? document.createTextNode(c) : c);
  return e;
}

const STATE_LABEL = {
  new: 'new', pending: 'pending', assigned: 'assigned', accepted: 'accepted', preparing: 'preparing', ready: 'ready',
  starting: 'starting', running: 'running', complete: 'complete', shutdown: 'shutdown', failed: 'failed',
  rejected: 'rejected', remove: 'removing', orphaned: 'orphaned',
};

/** "12s", "4m", "3h", "2d" since an ISO time. */
function ago(iso) {
  const t = Date.parse(iso);
  if (!Number.isFinite(t)) return '';
  const s = Math.max(0, Math.round((Date.now() - t) / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

function bytes(n) {
  if (!n) return '';
  const gib = n / 2 ** 30;
  return gib >= 1 ? `${gib.toFixed(gib >= 10 ? 0 : 1)} GiB` : `${Math.round(n / 2 ** 20)} MiB`;
}

const cap = (s) => (s ? s[0].toUpperCase() + s.slice(1) : s);

// ---- rendering ------------------------------------------------------------------------------

/** Cards by task ID, reused across updates so colour changes animate. */
const cards = new Map();

/** @param {ViewTask} t @param {Map<string, ViewService>} services */
function card(t, services) {
  let c = cards.get(t.id);
  if (!c) {
    c = el('article', { class: 'card', 'data-task-id': t.id, 'data-testid': 'task' });
    cards.set(t.id, c);
  }
  const svc = services.get(t.serviceId);
  // A card whose colour changed pulses once (cards are re-parented on every update, so a CSS
  // transition would not run).
  const changed = c.dataset.category !== undefined && c.dataset.category !== t.category;
  c.className = `card cat-${t.category}${changed ? ' flash' : ''}`;
  c.dataset.state = t.state;
  c.dataset.category = t.category;
  c.dataset.service = t.service;
  c.dataset.slot = String(t.slot);
  c.style.setProperty('--hue', String(svc ? svc.hue : 210));
  const name = t.slot > 0 ? `${t.service}.${t.slot}` : t.service;
  const showMsg = t.category === 'pending' || t.category === 'failed' || (t.category === 'starting' && t.message && t.message !== t.state);
  c.replaceChildren(...[
    el('div', { class: 'card-top' },
      el('span', { class: 'card-name', text: name, title: `${name} (${t.id})` }),
      el('span', { class: 'state-pill', text: STATE_LABEL[t.state] ?? t.state })),
    el('div', { class: 'card-meta' },
      el('span', { class: 'mono', text: t.id.slice(0, 10) }),
      t.desiredState !== 'running' && t.desiredState !== t.state ? el('span', { class: 'desired', text: `→ ${t.desiredState}` }) : null,
      el('span', { class: 'since', 'data-since': t.since, text: ago(t.since) })),
    showMsg && t.message ? el('div', { class: 'card-msg', text: t.message, title: t.message }) : null,
  ].filter((x) => x !== null));
  return c;
}

/** @param {ViewNode} n @param {ViewTask[]} tasks @param {Map<string, ViewService>} services */
function column(n, tasks, services) {
  const down = n.status !== 'ready';
  const badges = el('div', { class: 'badges' },
    n.leader ? el('span', { class: 'badge leader', text: '★ Leader' }) : null,
    el('span', { class: `badge role-${n.role}`, text: cap(n.role) }),
    el('span', { class: `badge avail-${n.availability}`, text: cap(n.availability) }),
    n.role === 'manager' && n.reachability && n.reachability !== 'reachable' && !n.leader ? el('span', { class: 'badge warn', text: cap(n.reachability) }) : null,
  );
  const meta = [n.addr, n.cpus ? `${n.cpus} CPU` : '', bytes(n.memoryBytes), n.dataplane].filter(Boolean).join(' · ');
  const running = tasks.filter((t) => t.category === 'running').length;
  return el('section', {
    class: `column status-${n.status}${n.leader ? ' is-leader' : ''}${n.availability !== 'active' ? ' not-active' : ''}`,
    'data-testid': 'node', 'data-node-id': n.id, 'data-hostname': n.hostname, 'data-status': n.status,
  },
  el('header', { class: 'col-head' },
    el('div', { class: 'col-title' },
      el('span', { class: `status-dot dot-${n.status}`, title: n.status }),
      el('h3', { text: n.hostname, title: n.id }),
      el('span', { class: 'count', text: `${running}/${tasks.length}`, title: 'running / tasks shown' })),
    badges,
    el('div', { class: 'col-meta', text: meta }),
    down ? el('div', { class: 'col-down', text: `${cap(n.status)}${n.message ? ` — ${n.message}` : ''}` }) : null),
  el('div', { class: 'col-body' }, ...(tasks.length ? tasks.map((t) => card(t, services)) : [el('div', { class: 'empty', text: 'no tasks' })])));
}

/** @param {ViewTask[]} tasks @param {Map<string, ViewService>} services */
function unassignedColumn(tasks, services) {
  return el('section', { class: 'column unassigned', 'data-testid': 'unassigned' },
    el('header', { class: 'col-head' },
      el('div', { class: 'col-title' }, el('span', { class: 'status-dot dot-pending' }), el('h3', { text: 'Unassigned' }),
        el('span', { class: 'count', text: String(tasks.length) })),
      el('div', { class: 'col-meta', text: 'waiting for the scheduler or for a node that fits' })),
    el('div', { class: 'col-body' }, ...tasks.map((t) => card(t, services))));
}

/** @param {ViewService} s */
function serviceChip(s) {
  const desired = s.replicas;
  const ok = desired === null ? s.running > 0 : s.running >= desired;
  const frac = desired ? Math.min(1, s.running / desired) : s.running > 0 ? 1 : 0;
  const bar = el('div', { class: 'bar' }, el('div', { class: 'bar-fill' }));
  /** @type {HTMLElement} */ (bar.firstChild).style.setProperty('--frac', String(frac));
  const chip = el('div', { class: `service${ok ? ' ok' : ' short'}`, 'data-testid': 'service', 'data-service': s.name, 'data-running': s.running, 'data-replicas': desired ?? '' },
    el('div', { class: 'service-top' },
      el('span', { class: 'service-dot' }),
      el('span', { class: 'service-name', text: s.name }),
      el('span', { class: 'replicas', text: desired === null ? `${s.running} · global` : `${s.running}/${desired}` })),
    bar,
    el('div', { class: 'service-meta' },
      el('span', { class: 'mono', text: s.image, title: s.image }),
      ...s.ports.map((p) => el('span', { class: 'port', text: p })),
      s.update && s.update !== 'completed' ? el('span', { class: 'badge warn', text: s.update.replace('_', ' ') }) : null));
  chip.style.setProperty('--hue', String(s.hue));
  return chip;
}

/** @param {ClusterView} v */
function render(v) {
  const banner = $('banner');
  banner.hidden = !v.error;
  banner.textContent = v.error ?? '';
  const services = new Map(v.services.map((s) => [s.id, s]));
  const byNode = new Map(v.nodes.map((n) => [n.id, /** @type {ViewTask[]} */ ([])]));
  const unassigned = [];
  for (const t of v.tasks) (t.nodeId && byNode.has(t.nodeId) ? byNode.get(t.nodeId) : unassigned).push(t);

  const seen = new Set(v.tasks.map((t) => t.id));
  for (const id of cards.keys()) if (!seen.has(id)) cards.delete(id);

  const cols = v.nodes.map((n) => column(n, byNode.get(n.id) ?? [], services));
  if (unassigned.length) cols.push(unassignedColumn(unassigned, services));
  $('board').replaceChildren(...(cols.length ? cols : [el('div', { class: 'board-empty', text: v.error ? '' : 'No nodes yet.' })]));

  $('services').replaceChildren(...(v.services.length
    ? v.services.map(serviceChip)
    : [el('div', { class: 'hint' }, 'No services yet — try ', el('code', { text: 'shoal service create --name web --replicas 3 shoal/busybox:latest …' }))]));

  const running = v.tasks.filter((t) => t.category === 'running').length;
  const ready = v.nodes.filter((n) => n.status === 'ready').length;
  const failed = v.tasks.filter((t) => t.category === 'failed').length;
  $('summary').replaceChildren(
    el('span', { class: 'stat' }, el('b', { text: `${ready}/${v.nodes.length}` }), ' nodes ready'),
    el('span', { class: 'stat' }, el('b', { text: String(v.services.length) }), ' services'),
    el('span', { class: 'stat' }, el('b', { text: String(running) }), ' tasks running'),
    failed ? el('span', { class: 'stat bad' }, el('b', { text: String(failed) }), ' failed') : '',
  );
  document.body.dataset.ready = 'true';
}

// ---- live updates ---------------------------------------------------------------------------

function setConn(state, text) {
  const c = $('conn');
  c.dataset.state = state;
  /** @type {HTMLElement} */ (c.querySelector('.conn-text')).textContent = text;
}

function connect() {
  const es = new EventSource('/events');
  es.addEventListener('open', () => setConn('live', 'live'));
  es.addEventListener('view', (ev) => {
    setConn('live', 'live');
    try {
      render(JSON.parse(/** @type {MessageEvent} */ (ev).data));
    } catch (e) {
      console.error('bad view', e);
    }
  });
  // EventSource reconnects by itself (retry: 1000 from the server).
  es.addEventListener('error', () => setConn('down', 'reconnecting…'));
}

setInterval(() => {
  for (const s of document.querySelectorAll('.since')) s.textContent = ago(/** @type {HTMLElement} */ (s).dataset.since ?? '');
}, 1000);

connect();
