// A task's acceptance criteria as a checklist a person can tick, add to, edit and trim: a tick is
// PATCH {check: [n]} (or uncheck), so it never overwrites what an agent ticked meanwhile; adding,
// editing and removing send the whole list (PATCH {acceptance_criteria}).

import type { Criterion } from "./api.ts";
import { byId, el, fill } from "./dom.ts";

export type CriteriaChange = { check: number[] } | { uncheck: number[] } | { acceptance_criteria: Criterion[] };

export class Checklist {
  private readonly list = byId("criteria");
  private readonly progress = byId("criteria-progress");
  private readonly emptyNote = byId("no-criteria");
  private readonly addForm = byId<HTMLFormElement>("criterion-form");
  private readonly newCriterion = byId<HTMLInputElement>("new-criterion");
  private criteria: Criterion[] = [];
  private editable = true;
  /** The position whose text is being edited: the list is not redrawn under the person's typing. */
  private editing: number | null = null;

  constructor(
    /** Sends the change; resolves true once the tracker took it. */
    private readonly save: (change: CriteriaChange) => Promise<boolean>,
    private readonly complain: (sentence: string) => void,
  ) {
    this.addForm.addEventListener("submit", (event) => {
      event.preventDefault();
      void this.add();
    });
  }

  /** Another task: an edit of the last one's criterion is dropped. */
  stopEditing(): void {
    this.editing = null;
  }

  show(criteria: Criterion[], editable: boolean): void {
    const focusedId = document.activeElement?.id ?? "";
    this.criteria = criteria;
    this.editable = editable;
    const done = criteria.filter((criterion) => criterion.done).length;
    this.progress.textContent = criteria.length > 0 ? `${done} of ${criteria.length} done` : "";
    if (this.editing !== null && editable) return;
    this.editing = null;
    fill(this.list, ...criteria.map((criterion, index) => this.item(criterion, index + 1)));
    this.emptyNote.hidden = criteria.length > 0;
    this.addForm.hidden = !editable;
    // A saved edit's field is gone: its criterion's Edit button takes the focus back.
    const refocus = focusedId.replace(/^criterion-text-/, "edit-criterion-");
    if (refocus && this.list.querySelector(`#${CSS.escape(refocus)}`)) byId(refocus).focus();
  }

  /** One criterion: its checkbox (the text is its label), then Edit and Remove. */
  private item(criterion: Criterion, position: number): HTMLLIElement {
    const id = `criterion-${position}`;
    const box = el("input", { type: "checkbox", id });
    box.checked = criterion.done;
    box.disabled = !this.editable;
    box.addEventListener("change", () => {
      void this.save(box.checked ? { check: [position] } : { uncheck: [position] }).then((saved) => {
        if (!saved) box.checked = criterion.done;
      });
    });
    const item = el("li", { class: criterion.done ? "done" : "" }, box, el("label", { for: id }, criterion.text));
    if (!this.editable) return item;
    const edit = el("button", { type: "button", id: `edit-${id}`, "aria-label": `Edit criterion ${position}` }, "Edit");
    edit.addEventListener("click", () => this.startEditing(item, position));
    const remove = el("button", { type: "button", "aria-label": `Remove criterion ${position}` }, "Remove");
    remove.addEventListener("click", () => {
      void this.save({ acceptance_criteria: this.criteria.filter((_, index) => index !== position - 1) });
    });
    item.append(el("span", { class: "criterion-buttons" }, edit, remove));
    return item;
  }

  /** The criterion becomes a one-field form: Enter saves, Escape (or Cancel) leaves it as it was. */
  private startEditing(item: HTMLLIElement, position: number): void {
    const criterion = this.criteria[position - 1]!;
    const inputId = `criterion-text-${position}`;
    const input = el("input", { id: inputId, maxlength: "1000", autocomplete: "off" });
    input.value = criterion.text;
    const cancel = el("button", { type: "button" }, "Cancel");
    const form = el(
      "form",
      { class: "inline-form", novalidate: "" },
      el("label", { for: inputId, class: "visually-hidden" }, `Criterion ${position}`),
      input,
      el("button", { type: "submit" }, "Save"),
      cancel,
    );
    this.editing = position;
    const stopEditing = () => {
      this.editing = null;
      this.show(this.criteria, this.editable);
      byId(`edit-criterion-${position}`).focus();
    };
    cancel.addEventListener("click", stopEditing);
    input.addEventListener("keydown", (event) => {
      if (event.key !== "Escape") return;
      event.preventDefault();
      stopEditing();
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const text = input.value.trim();
      if (text === "") return this.complain("Enter the criterion's text, or remove it.");
      const criteria = this.criteria.map((each, index) => (index === position - 1 ? { ...each, text } : each));
      this.editing = null;
      void this.save({ acceptance_criteria: criteria }).then((saved) => {
        if (!saved) this.show(this.criteria, this.editable);
      });
    });
    fill(item, form);
    input.focus();
  }

  private async add(): Promise<void> {
    const text = this.newCriterion.value.trim();
    if (text === "") return this.complain("Enter the new criterion's text.");
    if (await this.save({ acceptance_criteria: [...this.criteria, { text, done: false }] })) {
      this.newCriterion.value = "";
      // Back to the field for the next one, unless the person has moved on meanwhile.
      if (this.addForm.contains(document.activeElement)) this.newCriterion.focus();
    }
  }
}
