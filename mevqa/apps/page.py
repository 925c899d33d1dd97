"""The app page's style sheet and script (kept apart from the layout in :mod:`mevqa.apps.gradio_app`)."""

CSS = """
#status, #long-status, #live-status {min-height: 2.2em}
#backend {font-size: 0.9em}
.note {font-size: 0.8em; opacity: 0.9}
.suggest button {font-size: 0.82em !important; white-space: normal !important}
#au-table th, #au-table th * {white-space: nowrap !important}
#au-table td, #au-table td * {word-break: normal !important; overflow-wrap: normal !important}
/* Phones: the plot keeps a readable size and scrolls sideways; keyframes in rows of three. */
@media (max-width: 600px) {
  .gradio-container {padding: 4px !important}
  #chat {height: 380px !important}
  #motion-plot .matplotlib {display: block !important; overflow-x: auto !important}
  #motion-plot img {min-width: 760px !important; max-width: none !important}
  #keyframes .grid-container {grid-template-columns: repeat(3, minmax(80px, 1fr)) !important}
  #keyframes, #keyframes .grid-wrap {height: auto !important; max-height: none !important}
  #keyframes .caption-label {font-size: 0.75em !important}
  #au-table table {font-size: 12px !important}
  #timeline .matplotlib {display: block !important; overflow-x: auto !important}
  #timeline img {min-width: 760px !important; max-width: none !important}
  #event-frames .grid-container {grid-template-columns: repeat(3, minmax(80px, 1fr)) !important}
  #event-frames, #event-frames .grid-wrap {height: auto !important; max-height: none !important}
}
"""

# Questions are taken from the box in the browser, at the keystroke or click that sends them: the box is
# emptied at once, so letters typed straight after Enter start the next question, and each question goes
# into a list the Ask event takes from in order (Gradio itself reads the box later, and drops a second
# submit while the first is pending).
JS = """
() => {
  window.mevqaQuestions = window.mevqaQuestions || [];
  const box = () => document.querySelector('#question textarea');
  const take = () => {
    const t = box();
    if (!t) return;
    const q = t.value.trim();
    t.value = '';
    t.dispatchEvent(new Event('input', {bubbles: true}));
    if (q) window.mevqaQuestions.push(q);
  };
  window.mevqaTake = take;
  document.addEventListener('keydown', (e) => {
    if (e.target === box() && e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault(); e.stopImmediatePropagation();
      take();
      document.querySelector('#ask-button')?.click();
    }
  }, true);
  document.addEventListener('pointerdown', (e) => {
    if (e.target.closest && e.target.closest('#ask-button')) take();
  }, true);
}
"""
# Ask reached without a pointer (keyboard focus + Space) finds the list empty: take the box then. Without
# the page script (an embedding that drops it) Gradio's own value is used.
TAKE_QUESTION = """(q, s) => {
  const Q = window.mevqaQuestions;
  if (!Q || !window.mevqaTake) return [q, s];
  if (!Q.length) window.mevqaTake();
  return [Q.shift() || '', s];
}"""
